"""`create_app(config)`: the gateway as an aiohttp app.

    agentos-session gateway --config config/gateway.yaml
    python -m aiohttp.web -H 0.0.0.0 -P 8090 shadow_proxy.app:create_app   # AGNO_GATEWAY_CONFIG names the YAML

Only the factory and the wiring: the gateway's own paths are in shadow_proxy/admin.py
(`/healthz`, `/readyz`, `/metrics`, `/shadow/...`), every other request is proxied
(shadow_proxy/proxying.py), and `_gateway_ctx` starts and stops the parts (shadow_proxy/gateway.py)
with the app.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from aiohttp import web

from agentos_session.defaults import default_file
from comparator.noise import NoiseModel
from session_service.config import Settings, settings_from_env

from .admin import add_gateway_routes, guard_admin
from .appkeys import CONFIG, GATEWAY
from .config import GatewayConfig, load_config
from .dbids import INTERVAL_S as DB_IDS_INTERVAL_S
from .dbids import DbIdLearner
from .gateway import Gateway
from .metrics import GatewayMetrics
from .readiness import READINESS_INTERVAL_S
from .readiness import watch as watch_readiness
from .recorder import Recorder
from .redact import redact_sample
from .sides import HttpSide, InProcessNative, Side
from .store import GatewayStore
from .transforms import transformed

log = logging.getLogger("shadow_proxy")

# The shipped files, from the installed package (a wheel has no checkout's config/ beside it).
DEFAULT_CONFIG = default_file("gateway.yaml")


NATIVE_SETTINGS = web.AppKey("native_settings", Settings)
READINESS_INTERVAL = web.AppKey("readiness_interval_s", float)
DB_IDS_INTERVAL = web.AppKey("db_ids_interval_s", float)


def create_app(
    config: GatewayConfig | None | list[str] = None,
    *,
    native_settings: Any = None,
    readiness_interval_s: float = READINESS_INTERVAL_S,
    db_ids_interval_s: float = DB_IDS_INTERVAL_S,
) -> web.Application:
    """Without `config`, read the YAML named by AGNO_GATEWAY_CONFIG (else config/gateway.yaml
    when it exists) and the environment; `python -m aiohttp.web` calls this with its extra argv
    (a list), which means the same, and, as this is then the program's entry point, JSON logs at
    AGNO_LOG_LEVEL. `native_settings` (session_service Settings) overrides the environment of
    the in-process native service. `readiness_interval_s`: how often the background readiness
    check refreshes `shadow_ready`. `db_ids_interval_s`: how often the legacy AgentOS's
    `GET /config` is read again for its database ids (shadow_proxy/dbids.py)."""
    if isinstance(config, list):
        from agentos_session.logs import configure_logging

        configure_logging(os.environ.get("AGNO_LOG_LEVEL", "INFO"))
    if not isinstance(config, GatewayConfig):
        path = os.environ.get("AGNO_GATEWAY_CONFIG") or (DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None)
        config = load_config(path)
    app = web.Application(client_max_size=config.listen.max_body_bytes, middlewares=[guard_admin])
    app[CONFIG] = config
    app[READINESS_INTERVAL] = readiness_interval_s
    app[DB_IDS_INTERVAL] = db_ids_interval_s
    if native_settings is not None:
        app[NATIVE_SETTINGS] = native_settings
    app.cleanup_ctx.append(_gateway_ctx)
    if config.admin.port is not None:
        app.cleanup_ctx.append(_admin_port_ctx)
    add_gateway_routes(app, admin_elsewhere=config.admin.port is not None)
    app.router.add_route("*", "/{tail:.*}", proxy)
    return app


async def proxy(request: web.Request) -> web.StreamResponse:
    return await request.app[GATEWAY].proxy.handle(request)


async def _admin_port_ctx(app: web.Application) -> AsyncIterator[None]:
    """`admin.port`: an app of the gateway's own views only (no proxy), guarded as on the main
    port, on the same `Gateway` (registered after `_gateway_ctx`, so it is built first and its
    port closed first)."""
    config = app[CONFIG]
    admin = web.Application(middlewares=[guard_admin])
    admin[CONFIG] = config
    admin[GATEWAY] = app[GATEWAY]
    add_gateway_routes(admin)
    runner = web.AppRunner(admin, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, config.admin.host or config.listen.host, config.admin.port)
    await site.start()
    log.info(
        "gateway: admin port %s:%s (/metrics, /shadow/*)", config.admin.host or config.listen.host, config.admin.port
    )
    try:
        yield
    finally:
        await runner.cleanup()


def _native_settings(config: GatewayConfig) -> Any:
    """The in-process native service reads the same environment as `agentos-session serve`
    (the same function: the embedded Postgres in AGNO_EMBEDDED_PG_DIR when no DSN is set)."""
    return settings_from_env()


def _store_dsn(config: GatewayConfig, native_settings: Any) -> str:
    if config.store.dsn:
        return config.store.dsn
    if native_settings is not None:
        return str(native_settings.databases[0].dsn)
    return str(_native_settings(config).databases[0].dsn)


def _native_side(app: web.Application, config: GatewayConfig) -> tuple[Side, Settings | None]:
    """Native over HTTP when `native.url` is set, else the service in-process (its Settings too)."""
    if config.native.url:
        return HttpSide("native", config.native.url, config.native.max_connections), None
    from session_service.app import create_app as create_native_app

    settings = app.get(NATIVE_SETTINGS) or _native_settings(config)
    # Its access lines at DEBUG: the gateway writes the client request's one line itself.
    native_app = create_native_app(settings, access_log_level=logging.DEBUG)
    return InProcessNative(native_app, config.native.max_connections), settings


async def _gateway_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    native_side, native_settings = _native_side(app, config)
    native_app = native_side.app if isinstance(native_side, InProcessNative) else None
    # Each side's transform (shadow_proxy/transforms.py) wraps it once, here: every caller of
    # `send` (proxy, mirror, readiness, db ids) gets it.
    native = transformed(native_side, config.native.transform)
    legacy = (
        transformed(HttpSide("legacy", config.legacy.url, config.legacy.max_connections), config.legacy.transform)
        if config.legacy.url
        else None
    )
    dsn = _store_dsn(config, native_settings)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
    store = GatewayStore(pool, config.store.max_samples, config.store.max_age_s)
    await store.ensure_schema()
    if legacy is not None:
        # Without legacy every group runs natively, but that is not a decision to keep: the
        # configured stages are stored only once there is a legacy side to roll out from.
        await store.seed_stages({g.name: g.stage for g in config.groups})
    metrics = GatewayMetrics()
    recorder = (
        Recorder(
            config.shadow.record,
            config.shadow.record_max_bytes,
            config.redacted_headers,
            redact_paths=config.store.redact_paths,
            on_error=metrics.record_errors.inc,
            on_drop=metrics.record_dropped.inc,
        )
        if config.shadow.record
        else None
    )
    gateway = Gateway(
        config,
        legacy=legacy,
        native=native,
        metrics=metrics,
        store=store,
        recorder=recorder,
        rules=config.load_rules(),
        noise=NoiseModel.load(config.noise_model) if config.noise_model else None,
        redact=functools.partial(redact_sample, headers=config.redacted_headers, paths=config.store.redact_paths),
    )
    app[GATEWAY] = gateway
    await gateway.sides.start()
    if legacy is not None:
        gateway.dbids = DbIdLearner(
            legacy,
            native,
            metrics,
            native_app=native_app,
            settings=native_settings,
            timeout_s=config.legacy.timeout_s,
        )
        learned = await gateway.dbids.learn()
        log.info("db ids of the legacy AgentOS: %s", json.dumps(learned.body(), sort_keys=True))
    await gateway.rollout.refresh()
    listener = await gateway.rollout.listen(dsn)
    tasks = [asyncio.create_task(gateway.mirror.worker()) for _ in range(config.shadow.max_inflight)]
    tasks += [asyncio.create_task(loop()) for loop in gateway.rollout.loops()]
    tasks.append(asyncio.create_task(watch_readiness(gateway, app[READINESS_INTERVAL])))
    if gateway.dbids is not None:
        tasks.append(asyncio.create_task(gateway.dbids.watch(app[DB_IDS_INTERVAL])))
    log.info(
        "gateway: legacy=%s native=%s stages=%s",
        config.legacy.url,
        config.native.url or "in-process",
        {g: d.to_stage for g, d in gateway.stages.items()},
    )
    try:
        yield
    finally:
        # Let the copies already queued be compared and counted, for at most one shadow timeout.
        await gateway.mirror.drain(config.shadow.timeout_s)
        try:  # this replica's last verdicts join the shared evidence before it goes
            await gateway.rollout.flush()
        except Exception:
            log.warning("the gate's last counts could not be stored", exc_info=True)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if listener is not None:
            await listener.close()
        await gateway.sides.close()
        await pool.close()
        gateway.judge.close()
        if recorder is not None:
            recorder.close()
