"""Shared pieces for configuration validated by pydantic: strict scalar types with bounds, the
route-label type, environment overrides declared on the fields, and one error format.

Config files are read once at start-up into frozen pydantic dataclasses; every value that the
model refuses is reported as `dotted.path: reason`, one per line, so an operator sees every
bad key at once. The scalar types are strict (no `8090.5` for a port, no `"yes"` for a flag, no
`"5"` for a number) while containers stay lax, so YAML lists fill tuple fields.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import AfterValidator, Field, Strict, TypeAdapter, ValidationError
from pydantic_core import PydanticCustomError

Count = Annotated[int, Strict(), Field(ge=1)]
"""A size or count where 0 means nothing sensible (a queue of 0 is unbounded in asyncio)."""
NonNegativeInt = Annotated[int, Strict(), Field(ge=0)]
Port = Annotated[int, Strict(), Field(ge=1, le=65535)]
Seconds = Annotated[float, Strict(), Field(gt=0, allow_inf_nan=False)]
"""A timeout or interval; ints are accepted (`5` is 5.0 s)."""
Rate = Annotated[float, Strict(), Field(ge=0, le=1, allow_inf_nan=False)]
NonNegativeFloat = Annotated[float, Strict(), Field(ge=0, allow_inf_nan=False)]
PositiveFloat = Annotated[float, Strict(), Field(gt=0, allow_inf_nan=False)]
Text = Annotated[str, Strict()]
NonEmptyText = Annotated[str, Strict(), Field(min_length=1)]
Flag = Annotated[bool, Strict()]

_ROUTE_LABEL = re.compile(r"^[A-Z]+ /\S*$")


def _route_label(value: str) -> str:
    if not _ROUTE_LABEL.match(value):
        raise PydanticCustomError("route_label", "Input should be a route template like 'GET /sessions/{session_id}'")
    return value


RouteLabel = Annotated[str, Strict(), AfterValidator(_route_label)]
"""`METHOD /path/{param}`: how routes are named in rules, groups and metrics."""


@dataclasses.dataclass(frozen=True)
class Env:
    """Field metadata: the environment variable that overrides this field (see `apply_env`)."""

    name: str


def format_errors(
    error: ValidationError, source: str = "", keys: Mapping[str, Sequence[str]] | None = None, model: Any = None
) -> str:
    """One `source: path: reason` line per refused value. Inputs are left out on purpose: a
    misplaced token or DSN must not reach a log. Keys that are not plain names are quoted
    (`routes['GET /x'].ignore[0]`). `keys` names the items of lists that were built from a
    mapping (`{"groups": ["reads", "writes"]}`), so the path reads `groups.reads.stage` as in
    the file, not `groups[0].stage`. Unknown keys are gathered per mapping, with the allowed
    ones when `model` (the validated type) is given:
    `gate: unknown key(s) ['wat']; allowed: ['enabled', ...]`."""
    prefix = f"{source}: " if source else ""
    lines: list[str] = []
    unknown: dict[tuple[Any, ...], list[str]] = {}
    for item in error.errors():
        loc = tuple(item["loc"])
        if item["type"] in ("unexpected_keyword_argument", "extra_forbidden"):
            if loc[:-1] not in unknown:
                lines.append("")  # filled below, in the order of first appearance
                unknown[loc[:-1]] = []
            unknown[loc[:-1]].append(str(loc[-1]))
            continue
        message = item["msg"].removeprefix("Value error, ")  # a validator's own ValueError
        lines.append(f"{prefix}{_dotted(loc, keys) or '(top level)'}: {message}")
    for parent, names in unknown.items():
        allowed = _fields_at(model, parent)
        text = f"unknown key(s) {sorted(names)}" + (f"; allowed: {sorted(allowed)}" if allowed else "")
        lines[lines.index("")] = f"{prefix}{_dotted(parent, keys) + ': ' if parent else ''}{text}"
    return "\n".join(lines)


def _dotted(loc: Sequence[Any], keys: Mapping[str, Sequence[str]] | None) -> str:
    path = ""
    for position, part in enumerate(loc):
        names = (keys or {}).get(str(loc[position - 1])) if position else None
        if isinstance(part, int) and names is not None and 0 <= part < len(names):
            part = str(names[part])
        if part == "[key]":
            continue  # pydantic's marker for "the mapping key itself": the path already ends with it
        if isinstance(part, int):
            path += f"[{part}]"
        elif _NAME.match(str(part)):
            path += f".{part}" if path else str(part)
        else:
            path += f"[{str(part)!r}]"
    return path


def _fields_at(model: Any, loc: Sequence[Any]) -> list[str]:
    """The field names of the dataclass found by following `loc` down from `model`."""
    kind = model
    for part in (*loc, None):
        kind = _unwrap(kind)
        if kind is None:
            return []
        if part is None:
            break
        fields = getattr(kind, "__pydantic_fields__", None)
        if fields is not None:
            kind = fields[part].annotation if part in fields else None
        elif get_origin(kind) in (tuple, list):
            kind = get_args(kind)[0] if get_args(kind) else None
        elif get_origin(kind) is dict:
            kind = get_args(kind)[1] if get_args(kind) else None
        else:
            return []
    fields = getattr(kind, "__pydantic_fields__", None)
    return list(fields) if fields is not None else []


def _unwrap(kind: Any) -> Any:
    """`Annotated[X, ...]` and `Optional[X]` -> X (the first non-None member of a union)."""
    while True:
        origin = get_origin(kind)
        if origin is Annotated:
            kind = get_args(kind)[0]
        elif origin in (Union, UnionType):
            members = [a for a in get_args(kind) if a is not type(None)]
            kind = members[0] if members else None
        else:
            return kind


_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def apply_env(obj: Any, env: Mapping[str, str], path: str = "") -> Any:
    """`obj` with every field marked `Env(NAME)` set from a non-empty `env[NAME]`, the string
    validated against the field's own type and bounds. Walks nested dataclasses and tuples of
    them (one variable then sets the field of every element: `AGNO_GATEWAY_STAGE` sets every
    group's stage). Raises ValueError naming the variable and the key."""
    fields = getattr(type(obj), "__pydantic_fields__", None)
    if fields is None:
        return obj
    changes: dict[str, Any] = {}
    for name, info in fields.items():
        where = f"{path}.{name}" if path else name
        value = getattr(obj, name)
        marker = next((m for m in info.metadata if isinstance(m, Env)), None)
        if marker is not None and env.get(marker.name):
            adapter: TypeAdapter[Any] = TypeAdapter(Annotated[(info.annotation, *info.metadata)])  # type: ignore[arg-type]
            try:
                changes[name] = adapter.validate_strings(env[marker.name], strict=True)
            except ValidationError as exc:
                reason = "; ".join(e["msg"] for e in exc.errors())
                raise ValueError(f"{marker.name} ({where}): {reason}") from None
        elif dataclasses.is_dataclass(value):
            changed = apply_env(value, env, where)
            if changed is not value:
                changes[name] = changed
        elif isinstance(value, tuple) and value and all(dataclasses.is_dataclass(v) for v in value):
            items = tuple(apply_env(v, env, f"{where}.*") for v in value)
            if any(a is not b for a, b in zip(items, value, strict=True)):
                changes[name] = items
    return dataclasses.replace(obj, **changes) if changes else obj
