"""The route table and a Starlette-compatible matcher.

AgentOS is a Starlette app, and clients see Starlette's routing: trailing slashes stripped
before matching (agno's `TrailingSlashMiddleware`), `{param}` matching one decoded path segment,
404 `Not Found` when no path matches and 405 `Method Not Allowed` when a path matches with
another method. aiohttp's router differs on each point, so matching is done here, in a pure
function, and aiohttp only sees one catch-all route.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Awaitable, Callable, Optional

from aiohttp import web

Handler = Callable[[web.Request, dict[str, str]], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    handler_name: str

    @property
    def pattern(self) -> re.Pattern[str]:
        return compile_template(self.template)


def compile_template(template: str) -> re.Pattern[str]:
    """`/sessions/{session_id}` -> a regex where each `{name}` is one path segment."""
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
    return re.compile(f"^{regex}$")


# agno 3.1.10's sessions router, in its declaration order.
SESSION_ROUTES: tuple[Route, ...] = (
    Route("GET", "/sessions", "list_sessions"),
    Route("POST", "/sessions", "create_session"),
    Route("GET", "/sessions/{session_id}", "get_session"),
    Route("GET", "/sessions/{session_id}/runs", "get_session_runs"),
    Route("GET", "/sessions/{session_id}/run-previews", "get_session_run_previews"),
    Route("GET", "/sessions/{session_id}/runs/{run_id}", "get_session_run"),
    Route("DELETE", "/sessions/{session_id}", "delete_session"),
    Route("DELETE", "/sessions", "delete_sessions"),
    Route("POST", "/sessions/{session_id}/rename", "rename_session"),
    Route("PATCH", "/sessions/{session_id}", "update_session"),
)

_PATTERNS = tuple((route, compile_template(route.template)) for route in SESSION_ROUTES)


@dataclass(frozen=True)
class Match:
    """The outcome of matching: a route with its path parameters, or a 404/405."""

    route: Optional[Route]
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


def strip_trailing_slashes(path: str) -> str:
    """agno's TrailingSlashMiddleware: `/sessions/` and `/sessions//` are `/sessions`."""
    if path != "/" and path.endswith("/"):
        path = path.rstrip("/") or "/"
    return path


def match(method: str, path: str) -> Match:
    """Starlette's rule: the first full match wins; otherwise the first path-only match gives a
    405 whose `Allow` names that route's methods. FastAPI routes do not add HEAD to GET."""
    path = strip_trailing_slashes(path)
    first_partial: Optional[Route] = None
    for route, pattern in _PATTERNS:
        m = pattern.match(path)
        if m is None:
            continue
        if route.method == method:
            return Match(route, m.groupdict(), 200)
        first_partial = first_partial or route
    if first_partial is not None:
        return Match(None, {}, 405, (first_partial.method,))
    return Match(None, {}, 404)


def route_template(method: str, path: str) -> str:
    """`GET /sessions/abc/runs` -> `GET /sessions/{session_id}/runs`: the one place where a
    concrete request becomes a bounded route label, for metrics, comparator rules and reports.
    Paths outside the table are `METHOD unmatched` (or `METHOD method_not_allowed`)."""
    return match(method, path).label(method)
