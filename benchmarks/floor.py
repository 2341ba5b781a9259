"""The floor: the least any server can do for each read endpoint of the benchmark.

A bare aiohttp handler per endpoint that runs the very statements the native service runs
(asyncpg, the same pool size, JSONB decoded by `json.loads` as the native service does) and
returns the rows with `json.dumps`: no validation, no rendering, no logging, no metrics. The
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

SESSIONS = '"ai"."agno_sessions"'
RUNS = '"ai"."agno_runs"'

# GET /sessions (default sort: created_at desc), its filtered total, then the runs of the
# unnamed sessions on the page (the native service derives their session_name from them).
LIST_COUNT = f"SELECT count(*) FROM (SELECT * FROM {SESSIONS}) AS filtered"
LIST_PAGE = f'SELECT * FROM {SESSIONS} ORDER BY "created_at" DESC LIMIT $1 OFFSET $2'
# GET /sessions?type=...&user_id=...
FILTERED_WHERE = " WHERE user_id = $1 AND session_type = $2"
FILTERED_COUNT = f"SELECT count(*) FROM (SELECT * FROM {SESSIONS}{FILTERED_WHERE}) AS filtered"
FILTERED_PAGE = f'SELECT * FROM {SESSIONS}{FILTERED_WHERE} ORDER BY "created_at" DESC LIMIT $3 OFFSET $4'
# GET /sessions?sort_by=updated_at
SORTED_PAGE = f"SELECT * FROM {SESSIONS} ORDER BY coalesce(updated_at, created_at) DESC LIMIT $1 OFFSET $2"
RUNS_OF_SESSIONS = (
    f"SELECT session_id, run_data FROM {RUNS} WHERE session_id = ANY($1::varchar[]) "
    "ORDER BY run_index ASC, created_at ASC"
)
# GET /sessions/{id}, its runs, its run-previews, one run: the row, then all its runs.
GET_SESSION = f"SELECT * FROM {SESSIONS} WHERE session_id = $1"
RUNS_OF_SESSION = (
    f"SELECT run_data FROM {RUNS} WHERE session_id = $1 ORDER BY run_index ASC, created_at ASC, run_id ASC"
)

POOL = web.AppKey("pool", asyncpg.Pool)


def _json(body: Any) -> web.Response:
    return web.Response(body=json.dumps(body).encode(), content_type="application/json")


async def _init(conn: asyncpg.Connection) -> None:
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(typename, schema="pg_catalog", encoder=json.dumps, decoder=json.loads, format="text")


def _unnamed(rows: list[asyncpg.Record]) -> list[str]:
    return [r["session_id"] for r in rows if (r["session_data"] or {}).get("session_name") is None]


async def list_sessions(request: web.Request) -> web.Response:
    q = request.query
    limit = int(q.get("limit", "20"))
    offset = (int(q.get("page", "1")) - 1) * limit
    async with request.app[POOL].acquire() as conn:
        if "user_id" in q and "type" in q:
            args = (q["user_id"], q["type"])
            total = await conn.fetchval(FILTERED_COUNT, *args)
            rows = await conn.fetch(FILTERED_PAGE, *args, limit, offset)
        else:
            total = await conn.fetchval(LIST_COUNT)
            page = SORTED_PAGE if q.get("sort_by") == "updated_at" else LIST_PAGE
            rows = await conn.fetch(page, limit, offset)
        runs = await conn.fetch(RUNS_OF_SESSIONS, _unnamed(rows))
    return _json({"data": [dict(r) for r in rows], "runs": [dict(r) for r in runs], "total": total})


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
    _row, runs = await _session_and_runs(request)
    run_id = request.match_info["run_id"]
    for run in runs:
        if run.get("run_id") == run_id:
            return _json(run)
    raise web.HTTPNotFound()


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
