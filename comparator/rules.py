"""Comparison rules: what may differ between two answers and still be the same answer.

Rules are read from YAML (`config/comparator.yaml` documents every key) once, at the edge,
into frozen objects; `compare` only reads them. Per route template (`GET /sessions/{session_id}`):
paths to ignore, arrays compared without order (optionally matched by a key field), a float
tolerance, the response headers that are compared, whether key order counts, and a list sorted
by a key the request names whose tied items have no defined order (`Sorted`). The known
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
from typing import Annotated, Any, Literal
from urllib.parse import unquote

import pydantic
import yaml
from pydantic import BeforeValidator, ConfigDict, Field, Strict, TypeAdapter, ValidationError

from agentos_session.routing import compile_template, strip_trailing_slashes
from agentos_session.validation import Flag, NonEmptyText, NonNegativeFloat, RouteLabel, Text, format_errors

from .model import Difference, Request, Response
from .paths import ANY_INDEX, Segment, glob_matches, parse_path

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


UNSORTED: tuple[str, ...] = ()
"""`Sorted.key_fields` for a request the side answers in no defined order: no field is the key,
so every item has the same (NULL) key and the whole list is one tied run."""

PAGE_EDGE_TIE = "page-edge-tie"
"""`Comparison.known` of a pair whose only differences are `tie`s: a tied run at the page's edge
holding other members on each side (see `Sorted`). Reserved: no known difference may use it."""


@dataclass(frozen=True)
class Sorted:
    """A list the server sorts by a key the request names, whose tied items (equal keys) come
    in no defined order: SQL's ORDER BY leaves the order of equal keys to the plan, and a
    plan changes after a few executions of the same statement.

    The sort key is `key_param`'s value in the query (the last one when repeated, as FastAPI
    reads it), else `default_key`. `keys` maps each key to the item fields that show it as
    rendered, the first present and non-null one being the key (`[updated_at, created_at]`
    for SQL's `coalesce(updated_at, created_at)`); a key mapped to no field (`None`) sorts by a
    value the items do not show, so the list is compared as written. A key not in `keys` is
    `other_keys`: `unsorted` (the server applies no order then: the whole list is one tied
    run) or `as_written`. `identity` names the field that tells two items are the same item
    (pairs them inside a run, so a changed item is reported field by field).

    The direction (`sort_order`) is not needed: a tie is a run of adjacent items with equal
    keys in either direction, and equal keys are found on the rendered values, exactly (the
    JSON encodings are equal). NULL keys (field absent or null) are one value: SQL puts all
    NULLs together (first in DESC, last in ASC), so a run of them is a tie like any other.

    A page cut can fall inside a tie, so a run touching the page's first item (on a page after
    the first) or its last item (on a full page) may hold other members on each side. Whether
    a cut is possible is read from `page_param` (pages after `first_page`) and `limit_param`
    (a page as long as the limit, `default_limit` when absent); when they are not given, or
    unreadable, each edge is taken as possibly cut."""

    items: tuple[Segment, ...]
    default_key: str
    key_param: str | None = None
    keys: Mapping[str, tuple[str, ...] | None] = field(default_factory=dict)
    other_keys: Literal["unsorted", "as_written"] = "as_written"
    identity: str | None = None
    page_param: str | None = None
    first_page: int = 1
    limit_param: str | None = None
    default_limit: int | None = None

    def key_fields(self, query: Mapping[str, Sequence[str]]) -> tuple[str, ...] | None:
        """The fields holding the request's sort key; `UNSORTED` when the list has no order;
        None when the list is compared as written."""
        key = _last(query, self.key_param) if self.key_param else None
        key = self.default_key if key is None else key
        if key in self.keys:
            return self.keys[key]
        return UNSORTED if self.other_keys == "unsorted" else None

    def cut_edges(self, query: Mapping[str, Sequence[str]], length: int) -> tuple[bool, bool]:
        """Whether the page's first and its last item may sit next to a page cut."""
        start = True
        if self.page_param:
            page = _int(_last(query, self.page_param), self.first_page)
            start = page is None or page > self.first_page
        end = True
        limit = _int(_last(query, self.limit_param), self.default_limit) if self.limit_param else self.default_limit
        if limit is not None:
            end = length >= limit
        return start, end


def _last(query: Mapping[str, Sequence[str]], name: str | None) -> str | None:
    values = query.get(name, ()) if name else ()
    return values[-1] if values else None


def _int(value: str | None, default: int | None) -> int | None:
    """The query value as an int; the default when absent; None when unreadable."""
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        return None


@dataclass(frozen=True)
class RouteRules:
    """The rules in force for one route (the defaults merged with the route's own entry)."""

    ignore: tuple[str, ...] = ()
    unordered: tuple[Unordered, ...] = ()
    float_tolerance: float = 0.0
    headers: tuple[str, ...] = DEFAULT_HEADERS
    key_order: bool = True
    sorted: Sorted | None = None

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


def _concrete_path(value: str) -> str:
    """A `sorted.items` path: one concrete place (`data`, `$` for a top-level list), no `[*]`."""
    try:
        segments = parse_path(value)
    except ValueError as exc:
        raise ValueError(str(exc)) from None
    if ANY_INDEX in segments:
        raise ValueError(f"{value!r} should name one list, not a template with [*]")
    return value


def _fields(value: Any) -> Any:
    return (value,) if isinstance(value, str) else value


_Fields = Annotated[tuple[NonEmptyText, ...], BeforeValidator(_fields), Field(min_length=1)]


@pydantic.dataclasses.dataclass(frozen=True, config=_FILE_MODEL)
class _SortedFile:
    items: Annotated[NonEmptyText, pydantic.AfterValidator(_concrete_path)]
    default_key: NonEmptyText
    key_param: NonEmptyText | None = None
    keys: dict[Text, _Fields | None] | None = None  # null: sorted by what the items do not show
    other_keys: Literal["unsorted", "as_written"] = "as_written"
    identity: NonEmptyText | None = None
    page_param: NonEmptyText | None = None
    first_page: Annotated[int, Strict()] = 1
    limit_param: NonEmptyText | None = None
    default_limit: Annotated[int, Strict(), Field(ge=1)] | None = None

    def rule(self) -> Sorted:
        return Sorted(
            items=tuple(parse_path(self.items)),
            default_key=self.default_key,
            key_param=self.key_param,
            keys=dict(self.keys or {}),
            other_keys=self.other_keys,
            identity=self.identity,
            page_param=self.page_param,
            first_page=self.first_page,
            limit_param=self.limit_param,
            default_limit=self.default_limit,
        )


@pydantic.dataclasses.dataclass(frozen=True, config=_FILE_MODEL)
class _RouteRulesFile:
    ignore: _Paths = ()
    unordered: _UnorderedList = ()
    float_tolerance: NonNegativeFloat = None  # type: ignore[assignment]  # None: not given
    headers: _Paths = None  # type: ignore[assignment]  # None: not given; null in the file: none compared
    key_order: Flag = None  # type: ignore[assignment]  # None: not given
    sorted: _SortedFile | None = None

    def extend(self, base: RouteRules) -> RouteRules:
        """A route's entry extends the defaults: `ignore` and `unordered` add to them, the
        other keys replace them."""
        return RouteRules(
            ignore=base.ignore + self.ignore,
            unordered=base.unordered + tuple(Unordered(u.path, u.key) for u in self.unordered),
            float_tolerance=base.float_tolerance if self.float_tolerance is None else self.float_tolerance,
            headers=base.headers if self.headers is None else tuple(h.lower() for h in self.headers),
            key_order=base.key_order if self.key_order is None else self.key_order,
            sorted=base.sorted if self.sorted is None else self.sorted.rule(),
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
    if PAGE_EDGE_TIE in ids:
        raise RulesError(f"{path}: the id {PAGE_EDGE_TIE!r} is the comparator's own (a tie at a page edge)")
    if len(set(ids)) != len(ids):
        raise RulesError(f"{path}: ids must be unique, got {sorted({i for i in ids if ids.count(i) > 1})} twice")
    return tuple(out)


DEFAULT_RULES = Rules()
