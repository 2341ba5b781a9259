"""The sessions API of agno 3.1.10 AgentOS, as data: its route table, its route labels, and
what the gateway reads back to verify a write (`SESSION_WRITES`).

The native service serves these routes, the gateway groups them for the rollout, and the
comparator's callers label requests with them (the comparator itself knows no API; it is given
`route_label`). Kept here, in the neutral package, so none of those has to import another.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote, urlencode

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


@dataclass(frozen=True)
class CannotServe:
    """A native answer that says native is not set up for the request (not that the request is
    wrong): its status and a pattern its JSON `detail` matches in full. At stages `primary` and
    `native` the gateway treats such an answer as a failure and asks legacy instead."""

    status: int
    detail: str  # a regular expression, matched against the whole `detail`
    why: str  # what it means, for the docs and the log
    # True when native refused before touching any data, so a write may be sent to legacy
    # instead; a database that went away mid-request may have written.
    nothing_done: bool = True

    def matches(self, status: int, body: bytes) -> bool:
        if status != self.status:
            return False
        try:
            detail = json.loads(body).get("detail")
        except (ValueError, AttributeError):
            return False
        return isinstance(detail, str) and re.fullmatch(self.detail, detail) is not None


# agno's and the native service's texts (session_service/views.py `resolve_db`, reliability's 503).
# A genuine `404 {"detail":"Session not found"}` is not here: it is native's answer to give.
SESSION_CANNOT_SERVE: tuple[CannotServe, ...] = (
    CannotServe(404, r"No database found with id '.*'", "native has no database under this db_id"),
    CannotServe(404, r"No database with id '.*' has table '.*'", "native's database lacks this table"),
    CannotServe(
        400,
        r"The db_id query parameter is required when using multiple databases",
        "native has several databases and no default, where legacy may have one",
    ),
    CannotServe(503, r"Database unavailable.*", "native's database is away", nothing_done=False),
)


def cannot_serve(status: int, body: bytes, answers: Sequence[CannotServe] = SESSION_CANNOT_SERVE) -> CannotServe | None:
    """The entry of `answers` this answer matches, if any."""
    if status < 400:
        return None
    return next((a for a in answers if a.matches(status, body)), None)


def route_label(method: str, path: str) -> str:
    """`GET /sessions/abc/runs` -> `GET /sessions/{session_id}/runs`: the one place where a
    concrete sessions request becomes a bounded route label, for metrics, comparator rules,
    gateway groups and reports. Paths outside the table are `METHOD unmatched` (or
    `METHOD method_not_allowed`). The comparator's `route_label` hook for this project."""
    return SESSIONS.label(method, path)


@dataclass(frozen=True)
class WriteVerification:
    """How the gateway checks a write it sent to one side only (both sides share a database):
    which resources the write touched, and what to read back from both sides to compare. Data,
    so that the gateway itself knows no API; `SESSION_WRITES` is the sessions API's.

    - `id_param`: the path parameter naming the written resource (`/sessions/{session_id}/rename`);
    - `created_field`: for a write without it (a create), the field of the primary's answer
      holding the new id;
    - `bulk_field`: else (a bulk delete), the request body's field listing the ids;
    - `read_back`: the paths to read for each id (`{id}` is the id, path-quoted);
    - `read_back_deleted`: after a DELETE, the paths that must answer 404 on both sides;
    - `query`: the write's query parameters that also select what to read back (a database, a
      table, a session type, a user)."""

    id_param: str
    created_field: str
    bulk_field: str
    read_back: tuple[str, ...]
    read_back_deleted: tuple[str, ...]
    query: tuple[str, ...]
    # Body keys of a create that legacy (agno 3.1.10) drops and native keeps, each with the known
    # difference that names it: a create carrying one and written by legacy lost what native
    # would have kept, which the read-back cannot see (both sides read legacy's row).
    dropped_by_legacy: tuple[tuple[str, str], ...] = ()

    def dropped(self, method: str, params: Mapping[str, str], body: bytes) -> str | None:
        """The known difference of a create whose body carries a key legacy drops, if any."""
        if method != "POST" or self.id_param in params or not self.dropped_by_legacy:
            return None
        try:
            asked = json.loads(body or b"null")
        except ValueError:
            return None
        if not isinstance(asked, dict):
            return None
        return next((known for key, known in self.dropped_by_legacy if asked.get(key) is not None), None)

    def written_ids(self, method: str, params: Mapping[str, str], body: bytes, answer: bytes) -> list[str]:
        """The ids a successful write touched: the path's, the created one, or the listed ones."""
        if self.id_param in params:
            return [params[self.id_param]]
        try:
            if method == "POST":
                created = json.loads(answer)
                value = created.get(self.created_field) if isinstance(created, dict) else None
                return [value] if isinstance(value, str) and value else []
            asked = json.loads(body or b"null")
        except ValueError:
            return []
        ids = asked.get(self.bulk_field) if isinstance(asked, dict) else None
        # An empty id names no resource: its read-back path (`/sessions/`) would be another route.
        return [i for i in ids if isinstance(i, str) and i] if isinstance(ids, list) else []

    def reads(self, method: str, resource_id: str, query: Sequence[tuple[str, str]]) -> list[str]:
        """The targets to read back for one written id, with the write's selecting query kept."""
        kept = [(k, v) for k, v in query if k in self.query]
        suffix = f"?{urlencode(kept)}" if kept else ""
        paths = self.read_back_deleted if method == "DELETE" else self.read_back
        return [path.replace("{id}", quote(resource_id, safe="")) + suffix for path in paths]


SESSION_WRITES = WriteVerification(
    id_param="session_id",
    created_field="session_id",
    bulk_field="session_ids",
    read_back=("/sessions/{id}", "/sessions/{id}/runs"),
    read_back_deleted=("/sessions/{id}",),
    query=("db_id", "table", "type", "user_id"),
    dropped_by_legacy=(("runs", "create-with-runs"), ("summary", "create-with-summary")),
)

# The routes whose answer is a page (`{"data": [...], "meta": {...}}`): no top-level field of one
# session (`session_type`, `user_id`) is in it, so the gateway's report takes those cohort keys
# from the request alone and does not parse the page (up to 64 KB per mirrored copy).
SESSION_PAGES: frozenset[str] = frozenset({route_label("GET", "/sessions")})
