"""Comparison rules: what may differ between two answers and still be the same answer.

Rules are read from YAML (`config/comparator.yaml` documents every key) once, at the edge,
into frozen objects; `compare` only reads them. Per route template (`GET /sessions/{session_id}`):
paths to ignore, arrays compared without order (optionally matched by a key field), a float
tolerance, the response headers that are compared, and whether key order counts. The known
differences (`config/known_differences.yaml`) turn a pair they explain into `expected`.

The files are validated by pydantic models (`_RulesFile`, `_KnownFile`: unknown keys refused,
strict scalars); a bad value is a `RulesError` naming the file, the key's path and the reason.

Route labels: the comparator knows no API. A request's route is the first of the rules' own
templates (`routes:` keys, then the known differences' `route:`) that matches it, else what the
`label` function given to `Rules` says (`agentos_session.sessions_api.route_label` for this
project), else `METHOD unmatched`.
"""

from __future__ import annotations

import json
import pkgutil
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import unquote

import pydantic
import yaml
from pydantic import BeforeValidator, ConfigDict, Field, Strict, TypeAdapter, ValidationError

from agentos_session.routing import compile_template, strip_trailing_slashes
from agentos_session.validation import Flag, NonEmptyText, NonNegativeFloat, RouteLabel, Text, format_errors

from .model import Difference, Request, Response
from .paths import glob_matches

DEFAULT_HEADERS = ("content-type",)

RouteLabeller = Callable[[str, str], str]
"""`(method, path) -> "METHOD /template"`: how requests outside the rules' own routes are named."""

SESSIONS_LABEL = "agentos_session.sessions_api:route_label"
"""The labeller the command line and the pytest plugin use unless told otherwise (a name, not
an import: the comparator itself does not depend on the sessions API)."""


def import_labeller(spec: str | None) -> RouteLabeller | None:
    """`"package.module:function"` -> that function; empty or `none` -> None (only the rules'
    own route templates label requests). A name that does not resolve is a RulesError."""
    if not spec or spec.strip().lower() == "none":
        return None
    try:
        found = pkgutil.resolve_name(spec.strip())
    except (ImportError, AttributeError, ValueError) as exc:
        raise RulesError(f"route label {spec!r}: {exc}") from exc
    if not callable(found):
        raise RulesError(f"route label {spec!r} is not a function of (method, path)")
    return found


class RulesError(ValueError):
    """A rules file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class Unordered:
    """An array compared as a multiset. With `key`, elements are paired by that field."""

    path: str
    key: str | None = None


@dataclass(frozen=True)
class RouteRules:
    """The rules in force for one route (the defaults merged with the route's own entry)."""

    ignore: tuple[str, ...] = ()
    unordered: tuple[Unordered, ...] = ()
    float_tolerance: float = 0.0
    headers: tuple[str, ...] = DEFAULT_HEADERS
    key_order: bool = True

    def ignores(self, difference: Difference) -> bool:
        return bool(self.ignore) and glob_matches(self.ignore, difference.path, difference.template)

    def unordered_at(self, path: str, template: str) -> Unordered | None:
        for rule in self.unordered:
            if glob_matches((rule.path,), path, template, below=False):
                return rule
        return None


@dataclass(frozen=True)
class SideSpec:
    """What one side answers in a known difference: a status and, where fixed, the body."""

    status: int
    body: bytes | None = None

    def holds_for(self, response: Response) -> bool:
        return response.status == self.status and (self.body is None or response.body == self.body)


@dataclass(frozen=True)
class KnownDifference:
    """One entry of `known_differences.yaml`: a request (`match`) on which legacy and native
    answer differently on purpose, each side's answer, and optionally the body paths where they
    may differ (needed when both sides answer the same status)."""

    id: str
    route: str
    legacy: SideSpec
    native: SideSpec
    query: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # `query: {name: {pattern: REGEX}}`: some value of the parameter, decoded, contains a match.
    query_patterns: Mapping[str, re.Pattern[str]] = field(default_factory=dict)
    # `target: REGEX`: the decoded path and query (`/sessions/a\nb?user_id=\x00`) contain a match.
    target: re.Pattern[str] | None = None
    # `body_text: REGEX`: the body as sent (UTF-8, undecodable bytes replaced) contains a match;
    # for what a JSON parser cannot be asked about (NaN, 1e400, lone surrogate escapes).
    body_text: re.Pattern[str] | None = None
    body_keys: tuple[str, ...] = ()
    data: str | None = None
    paths: tuple[str, ...] = ()
    why: str = ""

    def explains(
        self,
        route: str | None,
        request: Request | None,
        legacy: Response,
        native: Response,
        differences: Sequence[Difference],
    ) -> bool:
        if route != self.route or request is None:
            return False
        query = request.query
        for name, allowed in self.query.items():
            if not any(value in allowed for value in query.get(name, ())):
                return False
        for name, pattern in self.query_patterns.items():
            if not any(pattern.search(value) for value in query.get(name, ())):
                return False
        if self.target is not None and not self.target.search(_decoded_target(request.target)):
            return False
        if self.body_text is not None and not self.body_text.search(request.body.decode("utf-8", "replace")):
            return False
        if self.body_keys and not _body_has_keys(request.body, self.body_keys):
            return False
        if not (self.legacy.holds_for(legacy) and self.native.holds_for(native)):
            return False
        # A stored-data trigger (`data`) cannot be seen in the exchange; the paths bound it.
        if self.paths:
            body_differences = [d for d in differences if d.kind not in ("status", "header")]
            return all(glob_matches(self.paths, d.path, d.template) for d in body_differences)
        return True


def _decoded_target(target: str) -> str:
    """Path and query percent-decoded as Starlette does (UTF-8, errors replaced)."""
    path, sep, query = target.partition("?")
    return unquote(path) + sep + unquote(query.replace("+", " "))


def _body_has_keys(body: bytes, keys: Sequence[str]) -> bool:
    try:
        parsed = json.loads(body or b"null")
    except (ValueError, RecursionError):  # RecursionError: a body nested past Python's limit
        return False
    return isinstance(parsed, dict) and all(k in parsed for k in keys)


@dataclass(frozen=True)
class Rules:
    """All rules: defaults, per-route overrides, known differences, and the labeller that names
    the routes of requests the rules do not name themselves (`label`; not part of equality)."""

    defaults: RouteRules = RouteRules()
    routes: Mapping[str, RouteRules] = field(default_factory=dict)
    known: tuple[KnownDifference, ...] = ()
    label: RouteLabeller | None = field(default=None, compare=False, repr=False)

    def for_route(self, route: str | None) -> RouteRules:
        return self.routes.get(route, self.defaults) if route else self.defaults

    @cached_property
    def _templates(self) -> tuple[tuple[str, re.Pattern[str], str], ...]:
        own = dict.fromkeys([*self.routes, *(entry.route for entry in self.known)])  # in order, once
        out = []
        for route in own:
            method, _, template = route.partition(" ")
            out.append((method, compile_template(template), route))
        return tuple(out)

    def route_of(self, request: Request | None) -> str | None:
        """The request's route template: the rules' own routes first (so the comparator serves
        any API), then `label`, else `METHOD unmatched`."""
        if request is None:
            return None
        path = strip_trailing_slashes(request.path)
        for method, pattern, route in self._templates:
            if method == request.method and pattern.match(path):
                return route
        return self.label(request.method, request.path) if self.label else f"{request.method} unmatched"

    def explain(
        self,
        route: str | None,
        request: Request | None,
        primary: Response,
        shadow: Response,
        differences: Sequence[Difference],
    ) -> KnownDifference | None:
        if not self.known:
            return None
        legacy, native = (shadow, primary) if primary.side == "native" or shadow.side == "legacy" else (primary, shadow)
        for entry in self.known:
            if entry.explains(route, request, legacy, native, differences):
                return entry
        return None

    # ---- loading ---------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path, label: RouteLabeller | None = None) -> Rules:
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise RulesError(f"{path}: {exc}") from exc
        return cls.from_mapping(data, base_dir=path.parent, source=str(path), label=label)

    @classmethod
    def from_mapping(
        cls,
        data: Mapping[str, Any],
        base_dir: Path = Path("."),
        source: str = "rules",
        label: RouteLabeller | None = None,
    ) -> Rules:
        parsed = _validated(_RulesFile, data, source)
        defaults = (parsed.defaults or _RouteRulesFile()).extend(RouteRules())
        routes = {
            route: (entry or _RouteRulesFile()).extend(defaults) for route, entry in (parsed.routes or {}).items()
        }
        known: tuple[KnownDifference, ...] = ()
        if parsed.known_differences:
            known = load_known_differences(base_dir / parsed.known_differences)
        return cls(defaults, routes, known, label)


# ---- the files' schema ---------------------------------------------------------------------
# What a rules file and a known-differences file may say. In a route's entry a key left out
# keeps the defaults' value (the field's default None is that "not given": pydantic does not
# validate defaults); a list given as null is empty; a scalar given as null is refused.

_FILE_MODEL = ConfigDict(extra="forbid")


@pydantic.dataclasses.dataclass(frozen=True, config=_FILE_MODEL)
class _UnorderedFile:
    path: NonEmptyText
    key: NonEmptyText | None = None


def _path_only(value: Any) -> Any:
    return {"path": value} if isinstance(value, str) else value


def _null_is_empty(value: Any) -> Any:
    return () if value is None else value


_Paths = Annotated[tuple[NonEmptyText, ...], BeforeValidator(_null_is_empty)]
_UnorderedList = Annotated[
    tuple[Annotated[_UnorderedFile, BeforeValidator(_path_only)], ...], BeforeValidator(_null_is_empty)
]


@pydantic.dataclasses.dataclass(frozen=True, config=_FILE_MODEL)
class _RouteRulesFile:
    ignore: _Paths = ()
    unordered: _UnorderedList = ()
    float_tolerance: NonNegativeFloat = None  # type: ignore[assignment]  # None: not given
    headers: _Paths = None  # type: ignore[assignment]  # None: not given; null in the file: none compared
    key_order: Flag = None  # type: ignore[assignment]  # None: not given

    def extend(self, base: RouteRules) -> RouteRules:
        """A route's entry extends the defaults: `ignore` and `unordered` add to them, the
        other keys replace them."""
        return RouteRules(
            ignore=base.ignore + self.ignore,
            unordered=base.unordered + tuple(Unordered(u.path, u.key) for u in self.unordered),
            float_tolerance=base.float_tolerance if self.float_tolerance is None else self.float_tolerance,
            headers=base.headers if self.headers is None else tuple(h.lower() for h in self.headers),
            key_order=base.key_order if self.key_order is None else self.key_order,
        )


@pydantic.dataclasses.dataclass(frozen=True, config=_FILE_MODEL)
class _RulesFile:
    defaults: _RouteRulesFile | None = None
    routes: dict[RouteLabel, _RouteRulesFile | None] | None = None
    known_differences: NonEmptyText | None = None  # a file, relative to the rules file


_Scalar = Annotated[str, Strict()] | Annotated[int, Strict()] | Annotated[float, Strict()]


def _a_regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"not a regular expression: {exc}") from None
    return value


_Regex = Annotated[NonEmptyText, pydantic.AfterValidator(_a_regex)]


@pydantic.dataclasses.dataclass(frozen=True, config=_FILE_MODEL)
class _PatternFile:
    pattern: _Regex


@pydantic.dataclasses.dataclass(frozen=True, config=_FILE_MODEL)
class _TriggerFile:
    # any of the values, or a value containing a match of `{pattern: REGEX}`
    query: dict[NonEmptyText, _Scalar | list[_Scalar] | _PatternFile] | None = None
    target: _Regex | None = None  # searched in the decoded path and query
    body_text: _Regex | None = None  # searched in the body as sent
    body: NonEmptyText | tuple[NonEmptyText, ...] | None = None  # top-level JSON keys present
    data: Text | None = None  # a stored-data trigger, in words (the comparator cannot see it)


@pydantic.dataclasses.dataclass(frozen=True, config=_FILE_MODEL)
class _SideFile:
    status: Annotated[int, Strict(), Field(ge=100, le=599)]
    body: Text | None = None
    note: Text | None = None  # for readers only

    def spec(self) -> SideSpec:
        return SideSpec(self.status, None if self.body is None else self.body.encode())


@pydantic.dataclasses.dataclass(frozen=True, config=_FILE_MODEL)
class _KnownFile:
    id: NonEmptyText
    route: RouteLabel
    legacy: _SideFile
    native: _SideFile
    when: Text | None = None  # for readers only
    match: _TriggerFile | None = None
    paths: tuple[NonEmptyText, ...] | None = None
    why: Text | None = None

    def entry(self) -> KnownDifference:
        trigger = self.match or _TriggerFile()
        query = {
            name: tuple(str(v) for v in (values if isinstance(values, list) else [values]))
            for name, values in (trigger.query or {}).items()
            if not isinstance(values, _PatternFile)
        }
        patterns = {
            name: re.compile(values.pattern)
            for name, values in (trigger.query or {}).items()
            if isinstance(values, _PatternFile)
        }
        body = trigger.body or ()
        return KnownDifference(
            id=self.id,
            route=self.route,
            legacy=self.legacy.spec(),
            native=self.native.spec(),
            query=query,
            query_patterns=patterns,
            target=re.compile(trigger.target) if trigger.target else None,
            body_text=re.compile(trigger.body_text) if trigger.body_text else None,
            body_keys=(body,) if isinstance(body, str) else body,
            data=trigger.data,
            paths=self.paths or (),
            why=(self.why or "").strip(),
        )


_ADAPTERS: Mapping[type, TypeAdapter[Any]] = {kind: TypeAdapter(kind) for kind in (_RulesFile, _KnownFile)}


def _validated(kind: type, data: Any, source: str) -> Any:
    try:
        return _ADAPTERS[kind].validate_python(data)
    except ValidationError as exc:
        raise RulesError(format_errors(exc, source, model=kind)) from None


def load_known_differences(path: str | Path) -> tuple[KnownDifference, ...]:
    """The entries of a known-differences file (a YAML list), each validated; an error names
    the file and the entry's id (or its position when it has none)."""
    path = Path(path)
    try:
        entries = yaml.safe_load(path.read_text()) or []
    except (OSError, yaml.YAMLError) as exc:
        raise RulesError(f"{path}: {exc}") from exc
    if not isinstance(entries, list):
        raise RulesError(f"{path}: should be a list of known differences, got {type(entries).__name__}")
    out = []
    for position, entry in enumerate(entries):
        name = entry.get("id") if isinstance(entry, Mapping) and isinstance(entry.get("id"), str) else f"[{position}]"
        out.append(_validated(_KnownFile, entry, f"{path}: {name}").entry())
    ids = [entry.id for entry in out]
    if len(set(ids)) != len(ids):
        raise RulesError(f"{path}: ids must be unique, got {sorted({i for i in ids if ids.count(i) > 1})} twice")
    return tuple(out)


DEFAULT_RULES = Rules()
