"""The app factory. `create_app(settings)` builds the aiohttp app; pools open and close through
`cleanup_ctx`, so `python -m aiohttp.web session_service.app:create_app` works as well.

Operational routes (open, no key): `/healthz`, `/readyz` (session_service/health.py), `/metrics`,
and `/openapi.json` (agno's document for the sessions routes: session_service/openapi.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from . import routes, views
from .appkeys import DATABASES, METRICS, ROUTE_MATCH, SETTINGS
from .config import Database, Settings, settings_from_env
from .cors import cors_middleware
from .health import healthz, readiness_ctx, readyz
from .metrics import ServiceMetrics
from .middleware import ACCESS_LOG_LEVEL, authenticate, observe
from .openapi import document_bytes, openapi_view
from .store import Store, init_connection
from .validation import starlette_path

log = logging.getLogger("session_service")


async def dispatch(request: web.Request) -> web.StreamResponse:
    """Every non-operational path: the Starlette-style match `observe` made, then the view."""
    found = request.get(ROUTE_MATCH) or routes.match(request.method, starlette_path(request.raw_path))
    if found.status == 404:
        return views.error_response(404, "Not Found")
    if found.status == 405:
        return views.error_response(405, "Method Not Allowed", headers={"Allow": ", ".join(found.allow)})
    assert found.route is not None
    handler = views.HANDLERS[found.route.handler_name]
    try:
        return await handler(request, found.params)
    except views.HTTPError as exc:
        return views.error_response(exc.status, exc.detail)
    except views.RequestInvalid as exc:
        return views.error_response(422, exc.errors)


async def metrics_view(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _open_database(db: Database, settings: Settings, metrics: ServiceMetrics) -> views.DatabaseHandle:
    histogram = metrics.query_latency.labels(db.db_id)

    def record(query: Any) -> None:
        histogram.observe(query.elapsed)

    async def init(conn: asyncpg.Connection) -> None:
        await init_connection(conn)
        conn.add_query_logger(record)

    # Timeouts from the request timeout (Settings.database_timeout_s): a stalled database is
    # then answered 503 (session_service/errors.py), never a request that hangs.
    pool = await asyncpg.create_pool(
        db.dsn,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        init=init,
        timeout=settings.database_timeout_s,
        command_timeout=settings.database_timeout_s,
    )
    try:
        async with pool.acquire() as conn:
            created = await Store.ensure_tables(conn, db.tables)
            if created:
                log.info("created missing tables %s in schema %s of db %s", created, db.tables.schema, db.db_id)
            columns, extra = await Store.introspect(conn, db.tables)
    except BaseException:
        await pool.close()
        raise
    return views.DatabaseHandle(db.db_id, pool, Store(db.tables, columns, extra))


async def _databases_ctx(app: web.Application) -> AsyncIterator[None]:
    settings, metrics = app[SETTINGS], app[METRICS]
    handles: dict[str, views.DatabaseHandle] = {}
    try:
        for db in settings.databases:
            handles[db.db_id] = await _open_database(db, settings, metrics)
        app[DATABASES].update(handles)
        # An alias is the same handle (one pool) under another id (Settings.db_aliases).
        app[DATABASES].update({alias: handles[db_id] for alias, db_id in settings.db_aliases.items()})
        yield
    finally:
        # The handles stay (closed): a request still in flight at shutdown then meets a closed
        # pool, an InterfaceError under a closing pool, which is a 503 (errors.py), where a
        # missing handle would be a KeyError and a 500.
        await asyncio.gather(*(h.pool.close() for h in handles.values()), return_exceptions=True)


def create_app(
    settings: Settings | None | list[str] = None, argv: Any = None, *, access_log_level: int = logging.INFO
) -> web.Application:
    """Build the app. Without `settings`, read them from the environment (`settings_from_env`:
    the embedded Postgres in AGNO_EMBEDDED_PG_DIR if no DSN is set). `python -m aiohttp.web`
    calls this with its extra argv (a list) in the first place; that means "from the
    environment" too, and, as this is then the program's entry point, JSON logs at
    AGNO_LOG_LEVEL instead of aiohttp.web's plain DEBUG ones.

    `access_log_level`: the level of the per-request access lines. The gateway runs this app
    in-process at DEBUG, because its own access line already covers the client's request."""
    if isinstance(settings, list):
        from agentos_session.logs import configure_logging

        configure_logging(os.environ.get("AGNO_LOG_LEVEL", "INFO"))
    if not isinstance(settings, Settings):
        settings = settings_from_env()
    # CORS inside `observe` (a crash's 500 has no CORS headers, as in AgentOS) and outside
    # `authenticate` (a preflight needs no key; a 401 gets CORS headers).
    cors = cors_middleware(lambda request: request.app[SETTINGS].cors)
    app = web.Application(middlewares=[observe, cors, authenticate], client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app[METRICS] = ServiceMetrics()
    app[DATABASES] = {}
    app[ACCESS_LOG_LEVEL] = access_log_level
    app[METRICS].watch_pools(lambda: {db_id: h.pool for db_id, h in app[DATABASES].items()})
    for db in settings.databases:
        app[METRICS].pool_max.labels(db.db_id).set(settings.pool_max_size)
    app.cleanup_ctx.append(_databases_ctx)
    app.cleanup_ctx.append(readiness_ctx)  # after the pools open, cancelled before they close
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_view)
    app.router.add_get("/openapi.json", openapi_view(document_bytes()))  # open, as in AgentOS
    # `(?s:...)`: aiohttp's `.` stops at a newline, and an id may hold one (agno routes it).
    app.router.add_route("*", "/{tail:(?s:.*)}", dispatch)
    return app


def register_db_aliases(app: web.Application, aliases: dict[str, str]) -> dict[str, str]:
    """Let a started app answer more ids (`{alias: db_id}`, as `Settings.db_aliases`): the gateway
    calls this when its periodic read of the AgentOS's `/config` finds an id it did not know at
    start. Returns the aliases registered (ids already answering, or naming no open database,
    are left out: the caller reports those)."""
    databases: dict[str, views.DatabaseHandle] = app[DATABASES]
    added = {a: t for a, t in aliases.items() if a not in databases and t in databases}
    databases.update({alias: databases[target] for alias, target in added.items()})
    return added
