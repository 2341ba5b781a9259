"""The sessions route table and its Starlette-compatible matcher, for the native service.

AgentOS is a Starlette app, and clients see Starlette's routing: trailing slashes stripped
before matching, `{param}` matching one decoded path segment, 404 `Not Found` when no path
matches and 405 `Method Not Allowed` when a path matches with another method. aiohttp's router
differs on each point, so matching is done in a pure function and aiohttp only sees one
catch-all route. The rules live in `agentos_session.routing`, the table in
`agentos_session.sessions_api`; this module binds them under the names the service uses.
"""

from __future__ import annotations

from agentos_session.routing import Match, Route, compile_template, strip_trailing_slashes
from agentos_session.sessions_api import SESSION_ROUTES, SESSIONS
from agentos_session.sessions_api import route_label as route_template

match = SESSIONS.match

__all__ = ["SESSION_ROUTES", "Match", "Route", "compile_template", "match", "route_template", "strip_trailing_slashes"]
