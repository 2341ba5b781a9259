"""Thin views: validate, pick the database, call the store, render. One function per route.

Each view mirrors the order of checks in agno's endpoint (validation, then database choice,
then the endpoint's own checks) because that order decides which error a client sees.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import uuid4

import asyncpg
from aiohttp import web

from . import history, render
from .appkeys import DATABASES, SETTINGS
from .auth_jwt import MISSING_USER_IDENTITY
from .store import SessionQuery, Store
from .validation import (
    CREATE_PARAMS,
    DELETE_PARAMS,
    DETAIL_PARAMS,
    LIST_PARAMS,
    RENAME_PARAMS,
    RUN_PARAMS,
    RUNS_PARAMS,
    UPDATE_PARAMS,
    BodyUnreadable,
    CreateSessionRequest,
    DeleteSessionRequest,
    RequestInvalid,
    UpdateSessionRequest,
    decode_body,
    parse_embedded_str,
    parse_model,
    parse_query,
    sanitize_string,
    storable,
    unstorable,
)

if TYPE_CHECKING:
    from .core import CoreRequest

JSON = "application/json"

# agno's `RunStatus` values, for the `status` filter of the runs routes.
RUN_STATUSES = frozenset({"PENDING", "RUNNING", "PAUSED", "COMPLETED", "CANCELLED", "ERROR", "REGENERATED"})
# agno's `RESERVED_RUN_METADATA_KEYS`: runtime-owned, stripped from client metadata.
RESERVED_METADATA_KEYS = frozenset({"agno_component_version", "agno_dispatch_chain", "agno_dispatch_depth"})
# The table names `?table=` may name (agno's `get_db._has_table`), besides the sessions table.
AGNO_OTHER_TABLES = ("agno_memories", "agno_learnings", "agno_metrics", "agno_eval_runs", "agno_knowledge")


class HTTPError(Exception):
    """An error answer with agno's `{"detail": ...}` body."""

    def __init__(self, status: int, detail: Any):
        super().__init__(detail)
        self.status = status
        self.detail = detail


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=render.dumps(body), status=status, content_type=JSON)


def error_response(status: int, detail: Any, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(body=render.dumps_error({"detail": detail}), status=status, content_type=JSON, headers=headers)


def no_content() -> web.Response:
    # AgentOS's 204s carry a JSON content type and no body.
    return web.Response(status=204, headers={"Content-Type": JSON})


@dataclass
class DatabaseHandle:
    """A routable database: its pool and the SQL for its tables."""

    db_id: str
    pool: asyncpg.Pool
    store: Store


# --------------------------------------------------------------------------------------------
# Shared steps
# --------------------------------------------------------------------------------------------


def _query(request: CoreRequest) -> dict[str, list[str]]:
    q = request.query
    query = {key: q.getall(key) for key in q.keys()}
    scoped = _scoped_user_id(request)
    if scoped is not None:
        # agno's resolve_db_and_scope: the token's user wins over the user_id filter.
        query["user_id"] = [scoped]
    return query


def _scoped_user_id(request: CoreRequest) -> str | None:
    return request.identity.scoped_user_id if request.identity is not None else None


async def _body(request: CoreRequest) -> Any:
    try:
        return decode_body(await request.read(), request.headers.get("Content-Type"))
    except BodyUnreadable:
        raise HTTPError(400, "There was an error parsing the body") from None


def _collect(*steps: Any) -> list[Any]:
    """Run validation steps and raise all their errors together, as FastAPI reports them."""
    results, errors = [], []
    for step in steps:
        try:
            results.append(step())
        except RequestInvalid as exc:
            errors.extend(exc.errors)
            results.append(None)
    if errors:
        raise RequestInvalid(errors)
    return results


async def resolve_db(request: CoreRequest, db_id: str | None, table: str | None) -> DatabaseHandle:
    """agno's `get_db` (the same choices and error texts), then `get_scoped_user_id`'s 403 for
    a token without a user under user isolation (agno's `resolve_db_and_scope` order)."""
    handle = await _resolve_db(request, db_id, table)
    if request.identity is not None and request.identity.missing_identity:
        raise HTTPError(403, MISSING_USER_IDENTITY)
    return handle


async def _resolve_db(request: CoreRequest, db_id: str | None, table: str | None) -> DatabaseHandle:
    if table and not db_id:
        raise HTTPError(400, "The db_id query parameter is required when passing a table")
    databases: dict[str, DatabaseHandle] = request.app[DATABASES]
    if db_id:
        handle = databases.get(db_id)
        if handle is None:
            raise HTTPError(404, f"No database found with id '{db_id}'")
        if table:
            tables = handle.store.tables
            if table not in (tables.sessions, *AGNO_OTHER_TABLES):
                raise HTTPError(404, f"No database with id '{db_id}' has table '{table}'")
            async with handle.pool.acquire() as conn:
                if not await Store.table_exists(conn, tables.schema, table):
                    raise HTTPError(404, f"No database with id '{db_id}' has table '{table}'")
        return handle
    default = request.app[SETTINGS].route_default_db_id
    if default is None:
        raise HTTPError(400, "The db_id query parameter is required when using multiple databases")
    return databases[default]


def _runs_with_legacy(table_runs: list[Any], row: dict[str, Any]) -> list[dict[str, Any]]:
    return render.merge_runs(table_runs, row.get("runs"))


def _strip_reserved(metadata: dict[str, Any] | None) -> dict[str, Any] | None:
    """agno's `strip_reserved_run_metadata`."""
    if not isinstance(metadata, dict) or not RESERVED_METADATA_KEYS.intersection(metadata):
        return metadata
    cleaned = {k: v for k, v in metadata.items() if k not in RESERVED_METADATA_KEYS}
    return cleaned or None


def _title(session_type: str) -> str:
    return session_type.title()


# --------------------------------------------------------------------------------------------
# Reads
# --------------------------------------------------------------------------------------------


async def list_sessions(request: CoreRequest, path: dict[str, str]) -> web.Response:
    q = parse_query(_query(request), LIST_PARAMS)
    db = await resolve_db(request, q["db_id"], q["table"])
    if q["page"] == 0:
        # agno passes page=0 to the database layer, which raises: a 500. See known differences.
        raise RequestInvalid(
            [
                {
                    "type": "greater_than_equal",
                    "loc": ["query", "page"],
                    "msg": "Input should be greater than or equal to 1",
                    "input": request.query.getall("page")[-1],
                    "ctx": {"ge": 1},
                }
            ]
        )
    _refuse_out_of_range(request, q["limit"], q["page"])
    query = SessionQuery(
        session_type=q["type"],
        component_id=q["component_id"],
        user_id=q["user_id"],
        session_name=q["session_name"],
        limit=q["limit"],
        page=q["page"],
        sort_by=q["sort_by"],
        sort_order=q["sort_order"],
    )
    async with db.pool.acquire() as conn:
        listed = await db.store.list_sessions(conn, query)
        # session_name is derived from the runs only where no name is stored; one run per such
        # session (fetched with the page) decides it in the common case, the rest load them all.
        runs: dict[str, list[Any]] = {}
        undecided = []
        for row in listed.rows:
            sid = row["session_id"]
            if (row.get("session_data") or {}).get("session_name") is not None:
                continue
            first = listed.first_runs.get(sid)
            if row.get("runs"):  # a 2.x blob comes first in the merged order
                undecided.append(sid)
            elif sid not in listed.first_runs:
                runs[sid] = []  # no runs (a team: no runs but its members'): the name is ""
            elif render.first_run_names(first, row.get("session_type")):
                runs[sid] = [first]
            else:
                undecided.append(sid)
        if undecided:
            runs.update(await db.store.runs_of_sessions(conn, undecided))
    items = [
        render.session_list_item(row, render.merge_runs(runs.get(row["session_id"], []), row.get("runs")))
        for row in listed.rows
    ]
    page = render.session_page(items, query.page, query.limit, listed.total)
    return web.Response(body=render.dumps_page(page), content_type=JSON)


_BIGINT_MAX = 2**63 - 1  # Postgres LIMIT and OFFSET are bigint


def _refuse_out_of_range(request: CoreRequest, limit: int, page: int) -> None:
    """A LIMIT or OFFSET past bigint is a 500 (DataError) in agno; a client mistake here, a 422
    (see known differences)."""
    if limit > _BIGINT_MAX:
        raise RequestInvalid(
            [
                {
                    "type": "less_than_equal",
                    "loc": ["query", "limit"],
                    "msg": f"Input should be less than or equal to {_BIGINT_MAX}",
                    "input": request.query.getall("limit")[-1],
                    "ctx": {"le": _BIGINT_MAX},
                }
            ]
        )
    if (page - 1) * limit > _BIGINT_MAX:
        raise RequestInvalid(
            [
                {
                    "type": "value_error",
                    "loc": ["query", "page"],
                    "msg": f"Value error, (page - 1) * limit should be at most {_BIGINT_MAX}",
                    "input": request.query.getall("page")[-1],
                }
            ]
        )


async def _load_session(
    db: DatabaseHandle, session_id: str, user_id: str | None
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    async with db.pool.acquire() as conn:
        row, table_runs = await db.store.session_with_runs(conn, session_id, user_id)
    if row is None:
        return None, []
    return row, _runs_with_legacy(table_runs, row)


async def get_session(request: CoreRequest, path: dict[str, str]) -> web.Response:
    q = parse_query(_query(request), DETAIL_PARAMS)
    db = await resolve_db(request, q["db_id"], q["table"])
    session_id = path["session_id"]
    row, runs = await _load_session(db, session_id, q["user_id"])
    if row is None:
        if q["type"] is None:
            raise HTTPError(404, f"Session with id '{session_id}' not found")
        raise HTTPError(404, f"{_title(q['type'])} Session with id '{session_id}' not found")
    as_type = q["type"] or render.detect_session_type(row)
    return json_response(render.session_detail(row, runs, as_type, include_none=False))


async def _session_run_schemas(request: CoreRequest, path: dict[str, str]) -> list[dict[str, Any]]:
    q = parse_query(_query(request), RUNS_PARAMS)
    wanted = None
    if q["status"]:
        wanted = {value.upper() for value in q["status"]}
        unknown = sorted(wanted - RUN_STATUSES)
        if unknown:
            raise HTTPError(400, f"Invalid status value(s) {unknown}; expected one of {sorted(RUN_STATUSES)}")
    db = await resolve_db(request, q["db_id"], q["table"])
    session_id = path["session_id"]
    row, runs = await _load_session(db, session_id, q["user_id"])
    if row is None:
        raise HTTPError(404, f"Session with ID {session_id} not found")
    session_type = q["type"] or render.detect_session_type(row)
    runs = render.filter_runs(runs, q["created_after"], q["created_before"])
    return render.filter_status(render.classify_runs(runs, session_type, row), wanted)


async def get_session_runs(request: CoreRequest, path: dict[str, str]) -> web.Response:
    schemas = await _session_run_schemas(request, path)
    return json_response([render.drop_none(s) for s in schemas])


async def get_session_run_previews(request: CoreRequest, path: dict[str, str]) -> web.Response:
    schemas = await _session_run_schemas(request, path)
    return json_response([render.run_preview(s) for s in schemas])


async def get_session_run(request: CoreRequest, path: dict[str, str]) -> web.Response:
    q = parse_query(_query(request), RUN_PARAMS)
    db = await resolve_db(request, q["db_id"], q["table"])
    session_id, run_id = path["session_id"], path["run_id"]
    async with db.pool.acquire() as conn:
        row, found, run = await db.store.session_with_run(conn, session_id, q["user_id"], run_id)
    if row is None:
        raise HTTPError(404, f"Session with ID {session_id} not found")
    # The run by primary key is the one agno finds when there is no 2.x blob to search first and
    # the stored run carries its own id (agno writes run_id and run_data from the same run).
    if found and not row.get("runs") and isinstance(run, dict) and run.get("run_id") == run_id:
        return json_response(render.run_by_shape(run, row))
    row, runs = await _load_session(db, session_id, q["user_id"])
    if row is None:
        raise HTTPError(404, f"Session with ID {session_id} not found")
    if not runs:
        raise HTTPError(404, f"Session with ID {session_id} has no runs")
    for run in runs:
        if run.get("run_id") == run_id:
            return json_response(render.run_by_shape(run, row))
    raise HTTPError(404, f"Run with ID {run_id} not found in session {session_id}")


# --------------------------------------------------------------------------------------------
# Writes
# --------------------------------------------------------------------------------------------


def _session_values(session_type: str, session_id: str, fields: dict[str, Any], created_at: int) -> dict[str, Any]:
    """The columns agno's `upsert_session` writes for a session of `session_type`.

    JSON columns in this dict are written as JSON (None as JSON `null`); the other type's
    columns are left out, so they stay SQL NULL on insert and untouched on update.
    """
    own = {
        "agent": ("agent_id", "agent_data"),
        "team": ("team_id", "team_data"),
        "workflow": ("workflow_id", "workflow_data"),
    }
    id_column, data_column = own[session_type]
    return {
        "session_id": session_id,
        "session_type": session_type,
        id_column: fields.get(id_column),
        "user_id": fields.get("user_id"),
        data_column: fields.get(data_column),
        "session_data": fields.get("session_data"),
        "summary": fields.get("summary"),
        "metadata": fields.get("metadata"),
        "created_at": created_at,
        "updated_at": created_at,
    }


ID_TAKEN_ELSEWHERE = (
    "Could not create a session with the supplied session_id. "
    "Omit session_id to have one generated, or choose a different one."
)


async def create_session(request: CoreRequest, path: dict[str, str]) -> web.Response:
    raw = await _body(request)
    q, body = _collect(
        lambda: parse_query(_query(request), CREATE_PARAMS),
        lambda: parse_model(raw, CreateSessionRequest, required=False),
    )
    db = await resolve_db(request, q["db_id"], None)
    session_type: str = q["type"]
    # What Postgres cannot store: agno sends it anyway and answers 500; see known differences.
    raw_fields = ("session_id", "user_id", f"{session_type}_id")  # agno ignores the other types' ids
    _refuse_unstorable(body, raw=raw_fields, stored=("session_name", "session_state", "metadata"))
    metadata = _strip_reserved(body.metadata)
    session_id = body.session_id or str(uuid4())
    session_data: dict[str, Any] = {}
    if body.session_state is not None:
        session_data["session_state"] = body.session_state
    if body.session_name is not None:
        session_data["session_name"] = body.session_name
    # agno: a verified token's user id wins over the body's (request.state.user_id, JWT mode).
    token_user_id = request.identity.user_id if request.identity is not None else None
    fields: dict[str, Any] = {
        "user_id": body.user_id if token_user_id is None else token_user_id,
        "session_data": session_data or None,
        "metadata": metadata,
        f"{session_type}_id": getattr(body, f"{session_type}_id"),
    }
    if session_type == "workflow":
        # WorkflowSession.__post_init__ turns these None values into {} before agno writes them.
        for key in ("session_data", "workflow_data", "metadata"):
            if fields.get(key) is None:
                fields[key] = {}
    # Native only: a history sent with the session (see session_service.history and the known
    # difference create-with-runs). Validated whole before anything is written.
    runs = history.validate_runs(body.runs, session_type, session_id) if body.runs is not None else []
    summary = history.validate_summary(body.summary, session_type)
    if summary is not None:
        fields["summary"] = summary
    now = int(time.time())
    conflict = f"Session with id '{session_id}' already exists. Use PATCH /sessions/{session_id} to update it."
    values = _session_values(session_type, session_id, fields, now)
    async with db.pool.acquire() as conn:
        if body.session_id is not None and await db.store.session_exists(conn, session_id):
            scoped = _scoped_user_id(request)
            if scoped is not None and await db.store.get_session(conn, session_id, scoped) is None:
                # agno under user isolation: another user's id is refused without saying so.
                raise HTTPError(409, ID_TAKEN_ELSEWHERE)
            raise HTTPError(409, conflict)
        # Insert-if-absent is atomic here; agno's check-then-upsert could overwrite in a race.
        if body.runs is None:
            row = await db.store.insert_session(conn, values)
        else:
            try:
                rows = history.run_rows(session_id, body.user_id, runs, now)
                row = await db.store.insert_session_with_runs(conn, values, rows)
            except asyncpg.UniqueViolationError:
                raise HTTPError(409, "A run of this session is already stored (run ids are unique)") from None
    if row is None:
        raise HTTPError(409, conflict)
    return json_response(render.session_detail(row, runs, session_type, include_none=False), status=201)


async def rename_session(request: CoreRequest, path: dict[str, str]) -> web.Response:
    raw = await _body(request)
    q, name = _collect(
        lambda: parse_query(_query(request), RENAME_PARAMS),
        lambda: parse_embedded_str(raw, "session_name"),
    )
    db = await resolve_db(request, q["db_id"], q["table"])
    if not storable(sanitize_string(name)):
        raise RequestInvalid(unstorable(name, ("body", "session_name"), sanitized=True))
    session_id = path["session_id"]
    async with db.pool.acquire() as conn:
        async with conn.transaction():
            row = await db.store.rename_session(conn, session_id, name, q["type"], q["user_id"])
            if row is None:
                raise HTTPError(404, f"Session with id '{session_id}' not found")
            table_runs = await db.store.runs_of_session(conn, session_id)
    as_type = q["type"] or render.detect_session_type(row)
    return json_response(render.session_detail(row, _runs_with_legacy(table_runs, row), as_type, include_none=True))


def _deserialized_fields(row: dict[str, Any], as_type: str) -> dict[str, Any]:
    """The row as agno's `{Agent,Team,Workflow}Session.from_dict` holds it before a write."""
    fields = dict(row)
    if as_type == "workflow":
        for key in ("session_data", "workflow_data", "metadata"):
            if fields.get(key) is None:
                fields[key] = {}
        fields["summary"] = None  # WorkflowSession has no summary: agno writes JSON null
    elif isinstance(fields.get("summary"), dict):
        try:
            fields["summary"] = render.normalize_summary(fields["summary"])
        except render.SummaryError:
            pass  # agno 500s on such a stored summary; we keep it as stored
    return fields


def _summary_of(summary: dict[str, Any] | None) -> dict[str, Any] | None:
    if summary is None:
        return None
    try:
        return render.normalize_summary(summary)
    except render.SummaryError as exc:
        # agno answers 500 (TypeError/ValueError) here. See known differences.
        raise RequestInvalid(
            [{"type": "value_error", "loc": ["body", "summary"], "msg": f"Value error, {exc}", "input": summary}]
        ) from None


def _refuse_unstorable(body: Any, *, raw: tuple[str, ...], stored: tuple[str, ...]) -> None:
    """A 422 naming each body field Postgres cannot store: `raw` fields are stored as sent
    (ids), `stored` ones after agno's control-character stripping (JSON values, names)."""
    errors: list[dict[str, Any]] = []
    for names, sanitized in ((raw, False), (stored, True)):
        for name in names:
            value = getattr(body, name)
            if value is not None:
                errors.extend(unstorable(value, ("body", name), sanitized=sanitized))
    for name in ("session_state", "metadata", "summary"):
        value = getattr(body, name, None)
        if value is not None and not render.renderable(value):
            errors.append({"type": "value_error", "loc": ["body", name], "msg": _TOO_DEEP})
    if errors:
        raise RequestInvalid(errors)


_TOO_DEEP = "Value error, nested too deeply for a session to be rendered (pydantic-core stops at 255 levels)"


async def update_session(request: CoreRequest, path: dict[str, str]) -> web.Response:
    raw = await _body(request)
    q, body = _collect(
        lambda: parse_query(_query(request), UPDATE_PARAMS),
        lambda: parse_model(raw, UpdateSessionRequest, required=True),
    )
    db = await resolve_db(request, q["db_id"], q["table"])
    metadata = _strip_reserved(body.metadata)
    session_id = path["session_id"]
    async with db.pool.acquire() as conn:
        async with conn.transaction():
            # Read and write under one row lock: agno's read-then-upsert can lose a concurrent update.
            row = await db.store.get_session(conn, session_id, q["user_id"], for_update=True)
            if row is None:
                raise HTTPError(404, f"Session with id '{session_id}' not found")
            # agno looks the session up first, then parses the summary: a missing session is a 404.
            new_summary = _summary_of(body.summary)
            _refuse_unstorable(body, raw=(), stored=("session_name", "session_state", "metadata", "summary"))
            as_type = q["type"] or render.detect_session_type(row)
            fields = _deserialized_fields(row, as_type)
            if body.session_name is not None or body.session_state is not None:
                session_data = dict(fields.get("session_data") or {})
                if body.session_name is not None:
                    session_data["session_name"] = body.session_name
                if body.session_state is not None:
                    session_data["session_state"] = body.session_state
                fields["session_data"] = session_data
            if body.metadata is not None:
                fields["metadata"] = metadata
            if new_summary is not None and as_type != "workflow":
                fields["summary"] = new_summary
            values = _session_values(as_type, session_id, fields, row["created_at"])
            updated = await db.store.upsert_session(conn, values, int(time.time()))
            if updated is None:
                raise HTTPError(500, "Failed to update session")
            table_runs = await db.store.runs_of_session(conn, session_id)
    runs = render.session_runs_for_type(_runs_with_legacy(table_runs, row), as_type)
    response_type = render.detect_session_type(updated)
    return json_response(render.session_detail(updated, runs, response_type, include_none=True))


async def delete_session(request: CoreRequest, path: dict[str, str]) -> web.Response:
    q = parse_query(_query(request), DELETE_PARAMS)
    db = await resolve_db(request, q["db_id"], q["table"])
    if q["delete_media"]:
        raise HTTPError(503, "Media storage is not configured on AgentOS")
    async with db.pool.acquire() as conn:
        await db.store.delete_session(conn, path["session_id"], q["user_id"])
    return no_content()


async def delete_sessions(request: CoreRequest, path: dict[str, str]) -> web.Response:
    raw = await _body(request)
    q, body = _collect(
        lambda: parse_query(_query(request), DELETE_PARAMS),
        lambda: parse_model(raw, DeleteSessionRequest, required=True),
    )
    if len(body.session_ids) != len(body.session_types):
        raise HTTPError(400, "Session IDs and session types must have the same length")
    db = await resolve_db(request, q["db_id"], q["table"])
    if q["delete_media"]:
        raise HTTPError(503, "Media storage is not configured on AgentOS")
    async with db.pool.acquire() as conn:
        await db.store.delete_sessions(conn, list(body.session_ids), q["user_id"])
    return no_content()


HANDLERS = {
    name: globals()[name]
    for name in (
        "list_sessions",
        "create_session",
        "get_session",
        "get_session_runs",
        "get_session_run_previews",
        "get_session_run",
        "delete_session",
        "delete_sessions",
        "rename_session",
        "update_session",
    )
}
