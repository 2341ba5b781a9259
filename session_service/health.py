"""Liveness and readiness of the native service.

* `GET /healthz` (documented behaviour, kept): `{"status":"ok"}` when every database answers
  `SELECT 1`, else 503 naming the first that does not.
* `GET /readyz`: every configured database is asked at once; 200 `{"status":"ready",
  "databases":{...}}`, or 503 `{"status":"not_ready","not_ready":{"<db_id>":"<reason>"}, ...}`
  naming each database that does not answer. Kubernetes: readiness httpGet /readyz, liveness a
  tcpSocket (a database outage should take the pod out of rotation, not restart it).

`check_databases` is the one readiness check: /readyz, the background loop and the gateway
(whose in-process native side is this app) all call it, and it sets `agno_session_db_up{db_id}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import asyncpg
from aiohttp import web

from agentos_session.watch import watch_readiness

from .appkeys import DATABASES, METRICS, SETTINGS

if TYPE_CHECKING:
    from .core import CoreRequest

log = logging.getLogger("session_service")

HEALTH_TIMEOUT_S = 2.0


async def ping(pool: asyncpg.Pool, timeout_s: float = HEALTH_TIMEOUT_S) -> str | None:
    """None when the pool gives a connection that answers `SELECT 1` within `timeout_s`, else
    why not (the exception's type only: its text may carry a host name or a user)."""
    try:
        async with asyncio.timeout(timeout_s):
            async with pool.acquire() as conn:
                await conn.fetchval("SELECT 1")
    except Exception as exc:  # any failure is "unreachable" to a health check
        return f"database unreachable ({type(exc).__name__})"
    return None


async def check_databases(app: web.Application) -> dict[str, str]:
    """`{db_id: reason}` for each configured database that does not answer (empty: all do),
    all asked at once; sets `agno_session_db_up` for every one."""
    handles, metrics = app[DATABASES], app[METRICS]
    ids = [db.db_id for db in app[SETTINGS].databases]

    async def one(db_id: str) -> str | None:
        handle = handles.get(db_id)
        if handle is None:  # before start-up opened the pools, or after clean-up closed them
            return "not open"
        return await ping(handle.pool)

    reasons = await asyncio.gather(*(one(db_id) for db_id in ids))
    for db_id, reason in zip(ids, reasons, strict=True):
        metrics.db_up.labels(db_id).set(0.0 if reason else 1.0)
    return {db_id: reason for db_id, reason in zip(ids, reasons, strict=True) if reason}


async def healthz(request: CoreRequest) -> web.Response:
    """`{"status":"ok"}` when every database answers `SELECT 1`, else 503 with the reason."""
    for db_id, handle in request.app[DATABASES].items():
        reason = await ping(handle.pool)
        if reason:
            return web.json_response({"status": "unavailable", "db_id": db_id, "reason": reason}, status=503)
    return web.json_response({"status": "ok"})


async def readyz(request: CoreRequest) -> web.Response:
    """200 when every configured database answers, else 503 naming each that does not."""
    not_ready = await check_databases(request.app)
    databases = {db.db_id: not_ready.get(db.db_id, "ok") for db in request.app[SETTINGS].databases}
    if not_ready:
        return web.json_response({"status": "not_ready", "not_ready": not_ready, "databases": databases}, status=503)
    return web.json_response({"status": "ready", "databases": databases})


async def readiness_ctx(app: web.Application) -> AsyncIterator[None]:
    """Refresh `agno_session_db_up` every `readiness_interval_s` even when nobody calls /readyz
    (Prometheus then sees an outage between probes), logging each change of state once."""
    interval = app[SETTINGS].readiness_interval_s
    watching = watch_readiness(lambda: check_databases(app), interval, log, describe=lambda db_id: f"database {db_id}")
    task = asyncio.create_task(watching)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
