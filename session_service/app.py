"""The app factory. `create_app(settings)` builds the aiohttp app; pools open and close through
`cleanup_ctx`, so `python -m aiohttp.web session_service.app:create_app` works as well.

The app is a thin adapter (`serve`) around the core (session_service/core.py), which the
gateway's in-process native side calls too: the app's mapping is the core's state (settings,
metrics, databases), opened and closed by its `cleanup_ctx` (`await app.startup()` and
`await app.cleanup()` for a caller that serves it without a runner).

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

from . import core, views
from .appkeys import DATABASES, METRICS, SETTINGS
from .config import Database, Settings, settings_from_env
from .health import readiness_ctx
from .metrics import ServiceMetrics
from .middleware import ACCESS_LOG_LEVEL
from .store import Store, init_connection, keep_connection_state

log = logging.getLogger("session_service")


@web.middleware
async def serve(request: web.Request, handler: Any) -> web.Response:
    """The whole aiohttp side of the service: read the body (within the limit and the request
    timeout), hand the request to the core as a value, return its answer. A middleware, not a
    route, so that every request target reaches the core, even one no route could match
    (`OPTIONS *`); aiohttp's own `handler` (its router's 404) is never called."""
    app = request.app
    arrived = asyncio.get_running_loop().time()
    settings = app[SETTINGS]
    body = b""
    refused: core.BodyRefusal | None = None
    length = request.content_length
    if length is not None and length > settings.max_body_bytes:
        refused = "too_large"  # refused unread, before any stage runs (as before the core)
    elif request.body_exists:
        try:
            async with asyncio.timeout_at(arrived + settings.request_timeout_s):
                body = await request.read()
        except web.HTTPRequestEntityTooLarge:  # a chunked body over client_max_size
            refused = "too_large"
        except TimeoutError:  # a body that trickles: 504, within the request timeout
            refused = "timeout"
    value = core.CoreRequest(
        app,
        request.method,
        request.raw_path,
        request.path,
        request.query,
        request.headers,
        body,
        request.remote,
        arrived,
        body_refused=refused,
    )
    return await core.handle(value)


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
        # No reset statement on release (one round trip per request saved): the service leaves
        # no session state on a connection; store.keep_connection_state says why that is safe.
        reset=keep_connection_state,
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
    # No routes: `serve` hands every request to the core (session_service/core.py), which routes.
    app = web.Application(middlewares=[serve], client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app[METRICS] = ServiceMetrics()
    app[DATABASES] = {}
    app[ACCESS_LOG_LEVEL] = access_log_level
    app[METRICS].watch_pools(lambda: {db_id: h.pool for db_id, h in app[DATABASES].items()})
    for db in settings.databases:
        app[METRICS].pool_max.labels(db.db_id).set(settings.pool_max_size)
    app.cleanup_ctx.append(_databases_ctx)
    app.cleanup_ctx.append(readiness_ctx)  # after the pools open, cancelled before they close
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
