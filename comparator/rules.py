"""Comparison rules: what may differ between two answers and still be the same answer.

Rules are read from YAML (`config/comparator.yaml` documents every key) once, at the edge,
into frozen objects; `compare` only reads them. Per route template (`GET /sessions/{session_id}`):
paths to ignore, arrays compared without order (optionally matched by a key field), a float
tolerance, the response headers that are compared, and whether key order counts. The known
differences (`config/known_differences.yaml`) turn a pair they explain into `expected`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import yaml

from session_service.routes import compile_template, route_template, strip_trailing_slashes

from .model import Difference, Request, Response
from .paths import glob_matches

DEFAULT_HEADERS = ("content-type",)


class RulesError(ValueError):
    """A rules file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class Unordered:
    """An array compared as a multiset. With `key`, elements are paired by that field."""

    path: str
    key: Optional[str] = None


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

    def unordered_at(self, path: str, template: str) -> Optional[Unordered]:
        for rule in self.unordered:
            if glob_matches((rule.path,), path, template, below=False):
                return rule
        return None


@dataclass(frozen=True)
class SideSpec:
    """What one side answers in a known difference: a status and, where fixed, the body."""

    status: int
    body: Optional[bytes] = None

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
    body_keys: tuple[str, ...] = ()
    data: Optional[str] = None
    paths: tuple[str, ...] = ()
    why: str = ""

    def explains(self, route: Optional[str], request: Optional[Request], legacy: Response, native: Response,
                 differences: Sequence[Difference]) -> bool:  # fmt: skip
        if route != self.route or request is None:
            return False
        query = request.query
        for name, allowed in self.query.items():
            if not any(value in allowed for value in query.get(name, ())):
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


def _body_has_keys(body: bytes, keys: Sequence[str]) -> bool:
    try:
        parsed = json.loads(body or b"null")
    except ValueError:
        return False
    return isinstance(parsed, dict) and all(k in parsed for k in keys)


@dataclass(frozen=True)
class Rules:
    """All rules: defaults, per-route overrides, known differences and user route templates."""

    defaults: RouteRules = RouteRules()
    routes: Mapping[str, RouteRules] = field(default_factory=dict)
    known: tuple[KnownDifference, ...] = ()

    def for_route(self, route: Optional[str]) -> RouteRules:
        return self.routes.get(route, self.defaults) if route else self.defaults

    @cached_property
    def _templates(self) -> tuple[tuple[str, re.Pattern[str], str], ...]:
        out = []
        for route in self.routes:
            method, _, template = route.partition(" ")
            out.append((method, compile_template(template), route))
        return tuple(out)

    def route_of(self, request: Optional[Request]) -> Optional[str]:
        """The request's route template: the rules' own routes first (so the comparator serves
        any API), then the sessions route table (`session_service.routes.route_template`)."""
        if request is None:
            return None
        path = strip_trailing_slashes(request.path)
        for method, pattern, route in self._templates:
            if method == request.method and pattern.match(path):
                return route
        return route_template(request.method, request.path)

    def explain(self, route: Optional[str], request: Optional[Request], primary: Response, shadow: Response,
                differences: Sequence[Difference]) -> Optional[KnownDifference]:  # fmt: skip
        if not self.known:
            return None
        legacy, native = (shadow, primary) if primary.side == "native" or shadow.side == "legacy" else (primary, shadow)
        for entry in self.known:
            if entry.explains(route, request, legacy, native, differences):
                return entry
        return None

    # ---- loading ---------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path) -> "Rules":
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise RulesError(f"{path}: {exc}") from exc
        return cls.from_mapping(data, base_dir=path.parent, source=str(path))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], base_dir: Path = Path("."), source: str = "rules") -> "Rules":
        _only(data, {"defaults", "routes", "known_differences"}, source)
        defaults = _route_rules(_mapping(data, "defaults", source), RouteRules(), f"{source}: defaults")
        routes = {}
        for route, entry in _mapping(data, "routes", source).items():
            if not isinstance(route, str) or " " not in route:
                raise RulesError(f"{source}: routes: {route!r} is not 'METHOD /path/{{param}}'")
            routes[route] = _route_rules(_mapping({route: entry}, route, f"{source}: routes"), defaults,
                                         f"{source}: routes: {route}")  # fmt: skip
        known: tuple[KnownDifference, ...] = ()
        if data.get("known_differences"):
            known = load_known_differences(base_dir / data["known_differences"])
        return cls(defaults, routes, known)


def _only(data: Any, allowed: set[str], where: str) -> None:
    if not isinstance(data, Mapping):
        raise RulesError(f"{where}: expected a mapping, got {type(data).__name__}")
    unknown = set(data) - allowed
    if unknown:
        raise RulesError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")


def _mapping(data: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    """An optional mapping: absent or null is empty; anything else must be a mapping."""
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise RulesError(f"{where}: {key} must be a mapping, got {type(value).__name__}")
    return value


def _list(data: Mapping[str, Any], key: str, where: str) -> list[Any]:
    """An optional list: a bare string is a mistake (it would be read letter by letter)."""
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise RulesError(f"{where}: {key} must be a list, got {type(value).__name__} {value!r}")
    return value


def _route_rules(data: Mapping[str, Any], base: RouteRules, where: str) -> RouteRules:
    """A route's entry extends the defaults: `ignore` and `unordered` add to them, the other
    keys replace them."""
    _only(data, {"ignore", "unordered", "float_tolerance", "headers", "key_order"}, where)
    ignore = _list(data, "ignore", where)
    if not all(isinstance(p, str) and p for p in ignore):
        raise RulesError(f"{where}: ignore must list path patterns (strings), got {ignore!r}")
    unordered = []
    for item in _list(data, "unordered", where):
        if isinstance(item, str):
            unordered.append(Unordered(item))
        elif isinstance(item, Mapping) and "path" in item and set(item) <= {"path", "key"}:
            unordered.append(Unordered(str(item["path"]), item.get("key")))
        else:
            raise RulesError(f"{where}: unordered: {item!r} is neither a path nor {{path, key}}")
    try:
        tolerance = float(data.get("float_tolerance", base.float_tolerance))
    except (TypeError, ValueError) as exc:
        raise RulesError(f"{where}: float_tolerance: {exc}") from exc
    if tolerance < 0 or tolerance != tolerance:
        raise RulesError(f"{where}: float_tolerance must be a number >= 0, got {tolerance!r}")
    headers = _list(data, "headers", where) if "headers" in data else list(base.headers)
    if not all(isinstance(h, str) and h for h in headers):
        raise RulesError(f"{where}: headers must list header names (strings), got {headers!r}")
    key_order = data.get("key_order", base.key_order)
    if not isinstance(key_order, bool):
        raise RulesError(f"{where}: key_order must be true or false, got {key_order!r}")
    return RouteRules(
        ignore=base.ignore + tuple(ignore),
        unordered=base.unordered + tuple(unordered),
        float_tolerance=tolerance,
        headers=tuple(h.lower() for h in headers),
        key_order=key_order,
    )


def load_known_differences(path: str | Path) -> tuple[KnownDifference, ...]:
    path = Path(path)
    try:
        entries = yaml.safe_load(path.read_text()) or []
    except (OSError, yaml.YAMLError) as exc:
        raise RulesError(f"{path}: {exc}") from exc
    return tuple(_known(entry, f"{path}: {entry.get('id', '?')}") for entry in entries)


def _known(entry: Mapping[str, Any], where: str) -> KnownDifference:
    try:
        trigger = entry.get("match") or {}
        query = {k: tuple(str(x) for x in (v if isinstance(v, list) else [v])) for k, v in (trigger.get("query") or {}).items()}
        body = trigger.get("body") or ()
        return KnownDifference(
            id=entry["id"],
            route=entry["route"],
            legacy=_side(entry["legacy"]),
            native=_side(entry["native"]),
            query=query,
            body_keys=tuple([body] if isinstance(body, str) else body),
            data=trigger.get("data"),
            paths=tuple(entry.get("paths") or ()),
            why=str(entry.get("why", "")).strip(),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise RulesError(f"{where}: malformed known difference ({exc!r})") from exc


def _side(spec: Mapping[str, Any]) -> SideSpec:
    body = spec.get("body")
    return SideSpec(int(spec["status"]), body.encode() if isinstance(body, str) else None)


DEFAULT_RULES = Rules()
