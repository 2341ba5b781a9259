"""The sessions API of agno 3.1.10 AgentOS, as data: its route table and its route labels.

The native service serves these routes, the gateway groups them for the rollout, and the
comparator's callers label requests with them (the comparator itself knows no API; it is given
`route_label`). Kept here, in the neutral package, so none of those has to import another.
"""

from __future__ import annotations

from agentos_session.routing import Route, RouteTable

# agno 3.1.10's sessions router, in its declaration order (the order decides matches).
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

SESSIONS = RouteTable(SESSION_ROUTES)


def route_label(method: str, path: str) -> str:
    """`GET /sessions/abc/runs` -> `GET /sessions/{session_id}/runs`: the one place where a
    concrete sessions request becomes a bounded route label, for metrics, comparator rules,
    gateway groups and reports. Paths outside the table are `METHOD unmatched` (or
    `METHOD method_not_allowed`). The comparator's `route_label` hook for this project."""
    return SESSIONS.label(method, path)
