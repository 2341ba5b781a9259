"""Route tables with Starlette's matching rules, for any API; pure and dependency-free.

A route's label, `GET /sessions/{session_id}`, is the bounded name every part uses for it: the
native service's metrics, the comparator's per-route rules and known differences, the gateway's
groups and reports. Clients see Starlette's routing (agno AgentOS is a Starlette app), so this is
the one implementation of it: trailing slashes stripped before matching (agno's
`TrailingSlashMiddleware`), `{param}` matching one path segment, the first full match winning,
else a 405 naming the first path-only match's method, else a 404.

This module knows no API; `agentos_session.sessions_api` holds the sessions routes as data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# RFC 9110 §9.2.1: the methods whose semantics are read-only. Only these are mirrored as
# reads, retried, or rechecked; PUT and DELETE are idempotent (§9.2.2) but not safe.
SAFE_METHODS: frozenset[str] = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Route:
    """One route: its method, its path template, and its name (the handler that serves it)."""

    method: str
    template: str
    name: str

    @property
    def handler_name(self) -> str:
        """`name`, under the session service's word for it: it finds the view in `views.HANDLERS`
        by this name."""
        return self.name

    @property
    def label(self) -> str:
        return f"{self.method} {self.template}"


def compile_template(template: str) -> re.Pattern[str]:
    """`/sessions/{session_id}` -> a regex where each `{name}` is one non-empty path segment."""
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
    return re.compile(f"^{regex}$")


def strip_trailing_slashes(path: str) -> str:
    """agno's TrailingSlashMiddleware: `/sessions/` and `/sessions//` are `/sessions`."""
    if path != "/" and path.endswith("/"):
        path = path.rstrip("/") or "/"
    return path


@dataclass(frozen=True)
class Match:
    """The outcome of matching: a route with its path parameters, or a 404/405."""

    route: Route | None
    params: dict[str, str]
    status: int  # 200 for a match, else 404 or 405
    allow: tuple[str, ...] = ()  # the 405's Allow header

    @property
    def template(self) -> str:
        """A bounded label for logs and metrics (never the concrete path)."""
        if self.route is not None:
            return self.route.template
        return "unmatched" if self.status == 404 else "method_not_allowed"

    def label(self, method: str) -> str:
        """The route template with its method, `GET /sessions/{session_id}`: the route's name in
        metrics, comparator rules, gateway groups and reports."""
        return f"{method} {self.template}"


class RouteTable:
    """Routes in declaration order (order matters: the first full match wins, as in Starlette)."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes: tuple[Route, ...] = tuple(routes)
        self._patterns = tuple((route, compile_template(route.template)) for route in self.routes)

    def match(self, method: str, path: str) -> Match:
        """Starlette's rule: the first full match wins; otherwise the first path-only match gives
        a 405 whose `Allow` names that route's method. FastAPI routes do not add HEAD to GET,
        and methods are case-sensitive."""
        path = strip_trailing_slashes(path)
        first_partial: Route | None = None
        for route, pattern in self._patterns:
            found = pattern.match(path)
            if found is None:
                continue
            if route.method == method:
                return Match(route, found.groupdict(), 200)
            first_partial = first_partial or route
        if first_partial is not None:
            return Match(None, {}, 405, (first_partial.method,))
        return Match(None, {}, 404)

    def label(self, method: str, path: str) -> str:
        """`GET /sessions/abc/runs` -> `GET /sessions/{session_id}/runs`; outside the table
        `METHOD unmatched` (no path matches) or `METHOD method_not_allowed`."""
        return self.match(method, path).label(method)

    def labels(self, methods: frozenset[str] | None = None) -> tuple[str, ...]:
        """The routes' labels in declaration order, optionally only those of `methods`."""
        return tuple(r.label for r in self.routes if methods is None or r.method in methods)
