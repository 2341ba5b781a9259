"""The floor: the least any server can do for each read endpoint of the benchmark.

A bare aiohttp handler per endpoint that runs the very statements the native service runs
(asyncpg, the same pool size, JSONB decoded by `json.loads`; the native service uses orjson
wherever the two agree) and
returns the rows with `json.dumps`: no validation, no rendering, no logging, no metrics. (It
borrows one pure rule of the native service, `first_run_names`, only to send the same follow-up
statement on the same list pages.) The
native service's cost above the floor is then its own code, not Postgres or the network.

The statements are copies of what `session_service/store.py` builds for these requests (the
store composes them at run time, it exposes no constants). They MUST stay equal to the store's:
tests/test_bench_suite.py runs the store on a real database with a query logger and compares.

    .venv/bin/python -m benchmarks.floor --dsn postgresql://... [--port 8081]
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import asyncpg
from aiohttp import web

from session_service import store
from session_service.render import first_run_names

SESSIONS = '"ai"."agno_sessions"'
RUNS = '"ai"."agno_runs"'
FIRST_RUN = "agentos_session_first_run"
FIRST_RUN_ID = "agentos_session_first_run_id"
NAME_INPUTS = store.NAME_INPUTS  # expressions, not statements: the statements are spelled out here
NOT_A_MEMBER_RUN = store.NOT_A_MEMBER_RUN


def _list(where: str, order: str, n: int) -> str:
    """The store's one list statement: the filtered count joined to the page, and the first run
    of each listed session without a stored name (its session_name is derived from it)."""
    return (
        f"SELECT filtered.total, page.*, first_run.run_id AS {FIRST_RUN_ID}, first_run.run_data AS {FIRST_RUN} "
        f"FROM (SELECT count(*) AS total FROM {SESSIONS}{where}) AS filtered "
        f"LEFT JOIN LATERAL (SELECT * FROM {SESSIONS}{where}{order} "
        f"LIMIT ${n + 1} OFFSET ${n + 2}) AS page ON true "
        f"LEFT JOIN LATERAL (SELECT run_id, {NAME_INPUTS} AS run_data FROM {RUNS} "
        "WHERE session_id = page.session_id "
        "AND coalesce(page.session_data -> 'session_name', 'null'::jsonb) = 'null'::jsonb "
        f"AND {NOT_A_MEMBER_RUN} "
        "ORDER BY run_index ASC, created_at ASC LIMIT 1) AS first_run ON true"
    )


# GET /sessions (default sort: created_at desc), filtered by type and user, sorted by updated_at.
LIST = _list("", ' ORDER BY "created_at" DESC', 0)
FILTERED = _list(" WHERE user_id = $1 AND session_type = $2", ' ORDER BY "created_at" DESC', 2)
SORTED = _list("", " ORDER BY coalesce(updated_at, created_at) DESC", 0)
# The runs of the listed sessions whose first run does not decide their session_name.
RUNS_OF_SESSIONS = (
    f"SELECT session_id, run_data FROM {RUNS} WHERE session_id = ANY($1::varchar[]) "
    "ORDER BY run_index ASC, created_at ASC"
)
# GET /sessions/{id}, its runs, its run-previews: the row, then all its runs.
GET_SESSION = f"SELECT * FROM {SESSIONS} WHERE session_id = $1"
RUNS_OF_SESSION = (
    f"SELECT run_data FROM {RUNS} WHERE session_id = $1 ORDER BY run_index ASC, created_at ASC, run_id ASC"
)
# GET /sessions/{id}/runs/{run_id}: the row with that run, by primary key.
SESSION_WITH_RUN = (
    f"SELECT s.*, r.run_id AS {FIRST_RUN_ID}, r.run_data AS {FIRST_RUN} FROM {SESSIONS} AS s "
    f"LEFT JOIN {RUNS} AS r ON r.run_id = $2 AND r.session_id = s.session_id WHERE s.session_id = $1"
)

POOL = web.AppKey("pool", asyncpg.Pool)


def _json(body: Any) -> web.Response:
    return web.Response(body=json.dumps(body).encode(), content_type="application/json")


async def _init(conn: asyncpg.Connection) -> None:
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(typename, schema="pg_catalog", encoder=json.dumps, decoder=json.loads, format="text")


def _undecided(rows: list[dict[str, Any]]) -> list[str]:
    """The unnamed sessions the native service loads all runs of (as it decides it)."""
    return [
        r["session_id"]
        for r in rows
        if (r["session_data"] or {}).get("session_name") is None
        and r[FIRST_RUN_ID] is not None
        and not first_run_names(r[FIRST_RUN], r["session_type"])
    ]


async def list_sessions(request: web.Request) -> web.Response:
    q = request.query
    limit = int(q.get("limit", "20"))
    offset = (int(q.get("page", "1")) - 1) * limit
    async with request.app[POOL].acquire() as conn:
        if "user_id" in q and "type" in q:
            records = await conn.fetch(FILTERED, q["user_id"], q["type"], limit, offset)
        else:
            records = await conn.fetch(SORTED if q.get("sort_by") == "updated_at" else LIST, limit, offset)
        rows = [dict(r) for r in records if r["session_id"] is not None]
        undecided = _undecided(rows)
        runs = await conn.fetch(RUNS_OF_SESSIONS, undecided) if undecided else []
    total = records[0]["total"] if records else 0
    return _json({"data": rows, "runs": [dict(r) for r in runs], "total": total})


async def _session(request: web.Request, sql: str, *args: Any) -> dict[str, Any]:
    async with request.app[POOL].acquire() as conn:
        row = await conn.fetchrow(sql, request.match_info["session_id"], *args)
    if row is None:
        raise web.HTTPNotFound()
    return dict(row)


async def _session_and_runs(request: web.Request) -> tuple[dict[str, Any], list[Any]]:
    session_id = request.match_info["session_id"]
    async with request.app[POOL].acquire() as conn:
        row = await conn.fetchrow(GET_SESSION, session_id)
        if row is None:
            raise web.HTTPNotFound()
        runs = await conn.fetch(RUNS_OF_SESSION, session_id)
    return dict(row), [r["run_data"] for r in runs]


async def get_session(request: web.Request) -> web.Response:
    row, runs = await _session_and_runs(request)
    return _json({**row, "runs": runs})


async def get_runs(request: web.Request) -> web.Response:
    _row, runs = await _session_and_runs(request)
    return _json(runs)


async def get_run(request: web.Request) -> web.Response:
    row = await _session(request, SESSION_WITH_RUN, request.match_info["run_id"])
    if row[FIRST_RUN_ID] is None:
        raise web.HTTPNotFound()
    return _json(row[FIRST_RUN])


async def healthz(request: web.Request) -> web.Response:
    return _json({"status": "ok"})


def make_app(dsn: str, pool_max: int = 10) -> web.Application:
    """The floor app; the pool is the native service's default size (AGNO_POOL_MAX_SIZE=10)."""
    app = web.Application()

    async def pool_ctx(app: web.Application) -> Any:
        app[POOL] = await asyncpg.create_pool(dsn, min_size=1, max_size=pool_max, init=_init)
        yield
        await app[POOL].close()

    app.cleanup_ctx.append(pool_ctx)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/sessions", list_sessions)
    app.router.add_get("/sessions/{session_id}", get_session)
    app.router.add_get("/sessions/{session_id}/runs", get_runs)
    app.router.add_get("/sessions/{session_id}/run-previews", get_runs)
    app.router.add_get("/sessions/{session_id}/runs/{run_id}", get_run)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", required=True, help="libpq/asyncpg DSN of the seeded database")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    args = parser.parse_args()
    web.run_app(make_app(args.dsn), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
