"""`create_app(config)`: the gateway as an aiohttp app.

    agentos-session gateway --config config/gateway.yaml
    python -m aiohttp.web -H 0.0.0.0 -P 8090 shadow_proxy.app:create_app   # AGNO_GATEWAY_CONFIG names the YAML

Its own paths: `/healthz` (liveness: no network), `/readyz` (readiness: store, native and,
while a stage needs it, legacy; see shadow_proxy/readiness.py), `/metrics` (the gateway's
metrics, and the in-process native service's), `/shadow/stage` (GET the stages; POST a stage
by hand, admin token), `/shadow/mismatches` and `/shadow/report`. Every other request is
proxied, with one access line each (shadow_proxy/gateway.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import json
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from agentos_session.defaults import default_file
from comparator.noise import NoiseModel
from session_service.appkeys import METRICS as NATIVE_METRICS
from session_service.config import Settings, settings_from_env

from .admin import add_admin_routes
from .appkeys import CONFIG, GATEWAY
from .config import STAGES, GatewayConfig, load_config
from .gateway import Gateway
from .metrics import GatewayMetrics
from .readiness import READINESS_INTERVAL_S
from .readiness import check as check_readiness
from .readiness import watch as watch_readiness
from .recorder import Recorder
from .redact import redact_sample
from .sides import HttpSide, InProcessNative, Side
from .store import CHANNEL, GatewayStore

log = logging.getLogger("shadow_proxy")

# The shipped files, from the installed package (a wheel has no checkout's config/ beside it).
DEFAULT_CONFIG = default_file("gateway.yaml")


NATIVE_SETTINGS = web.AppKey("native_settings", Settings)
READINESS_INTERVAL = web.AppKey("readiness_interval_s", float)


def create_app(
    config: GatewayConfig | None | list[str] = None,
    *,
    native_settings: Any = None,
    readiness_interval_s: float = READINESS_INTERVAL_S,
) -> web.Application:
    """Without `config`, read the YAML named by AGNO_GATEWAY_CONFIG (else config/gateway.yaml
    when it exists) and the environment; `python -m aiohttp.web` calls this with its extra argv
    (a list), which means the same, and, as this is then the program's entry point, JSON logs at
    AGNO_LOG_LEVEL. `native_settings` (session_service Settings) overrides the environment of
    the in-process native service. `readiness_interval_s`: how often the background readiness
    check refreshes `shadow_ready`."""
    if isinstance(config, list):
        from agentos_session.logs import configure_logging

        configure_logging(os.environ.get("AGNO_LOG_LEVEL", "INFO"))
    if not isinstance(config, GatewayConfig):
        path = os.environ.get("AGNO_GATEWAY_CONFIG") or (DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None)
        config = load_config(path)
    app = web.Application(client_max_size=config.listen.max_body_bytes, middlewares=[guard_admin])
    app[CONFIG] = config
    app[READINESS_INTERVAL] = readiness_interval_s
    if native_settings is not None:
        app[NATIVE_SETTINGS] = native_settings
    app.cleanup_ctx.append(_gateway_ctx)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_view)
    app.router.add_get("/shadow/stage", stages_view)
    app.router.add_post("/shadow/stage", set_stage_view)
    add_admin_routes(app)
    app.router.add_route("*", "/{tail:.*}", proxy)
    return app


async def proxy(request: web.Request) -> web.StreamResponse:
    return await request.app[GATEWAY].handle(request)


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


async def _gateway_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    native_settings = None
    if config.native.url:
        native: Side = HttpSide("native", config.native.url, config.native.max_connections)
    else:
        from session_service.app import create_app as create_native_app

        native_settings = app.get(NATIVE_SETTINGS) or _native_settings(config)
        # Its access lines at DEBUG: the gateway writes the client request's one line itself.
        native = InProcessNative(
            create_native_app(native_settings, access_log_level=logging.DEBUG), config.native.max_connections
        )
    legacy = HttpSide("legacy", config.legacy.url, config.legacy.max_connections) if config.legacy.url else None
    dsn = _store_dsn(config, native_settings)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
    store = GatewayStore(pool, config.store.max_samples, config.store.max_age_s)
    await store.ensure_schema()
    if legacy is not None:
        # Without legacy every group runs natively, but that is not a decision to keep: the
        # configured stages are stored only once there is a legacy side to roll out from.
        await store.seed_stages({g.name: g.stage for g in config.groups})
    recorder = (
        Recorder(config.shadow.record, config.shadow.record_max_bytes, config.store.redact_headers)
        if config.shadow.record
        else None
    )
    gateway = Gateway(
        config,
        legacy=legacy,
        native=native,
        metrics=GatewayMetrics(),
        store=store,
        recorder=recorder,
        rules=config.load_rules(),
        noise=NoiseModel.load(config.noise_model) if config.noise_model else None,
        redact=functools.partial(redact_sample, headers=config.store.redact_headers, paths=config.store.redact_paths),
    )
    app[GATEWAY] = gateway
    await native.start()
    if legacy is not None:
        await legacy.start()
    await gateway.refresh_stages()
    listener = await _listen(dsn, gateway)
    tasks = [asyncio.create_task(gateway.worker()) for _ in range(config.shadow.max_inflight)]
    tasks.append(asyncio.create_task(_every(config.rollout.poll_s, gateway.refresh_stages, "stage poll")))
    tasks.append(asyncio.create_task(watch_readiness(gateway, app[READINESS_INTERVAL])))
    if config.gate.enabled:
        tasks.append(asyncio.create_task(_every(config.gate.interval_s, gateway.gate_step, "parity gate")))
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
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(gateway.queue.join(), config.shadow.timeout_s)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if listener is not None:
            await listener.close()
        if legacy is not None:
            await legacy.close()
        await native.close()
        await pool.close()
        gateway.executor.shutdown(wait=False, cancel_futures=True)
        if recorder is not None:
            recorder.close()


async def _listen(dsn: str, gateway: Gateway) -> asyncpg.Connection | None:
    """LISTEN for stage changes made by other replicas (polling covers a lost connection)."""
    try:
        conn = await asyncpg.connect(dsn)
    except (OSError, asyncpg.PostgresError) as exc:
        log.warning("no LISTEN connection (%s); stage changes arrive by polling only", exc)
        return None

    def on_notify(*_: Any) -> None:
        asyncio.get_running_loop().create_task(gateway.refresh_stages())

    await conn.add_listener(CHANNEL, on_notify)
    return conn


async def _every(seconds: float, step: Any, name: str) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except Exception:  # a failed round (the database away for a moment) must not end the loop
            log.exception("%s failed; retrying in %.1f s", name, seconds)


# ---- the gateway's own views --------------------------------------------------------------------


async def healthz(request: web.Request) -> web.Response:
    """Liveness: 200 while the process serves, with the stages and the mirror's queue. It asks
    no dependency (that is /readyz), so a database outage never gets the gateway restarted."""
    gateway = request.app[GATEWAY]
    stages = {g: d.to_stage for g, d in gateway.stages.items()}
    return web.json_response({"status": "ok", "stages": stages, "mirror": gateway.snapshot()["mirror"]})


async def readyz(request: web.Request) -> web.Response:
    """Readiness (shadow_proxy/readiness.py): 200 when the store, the native side and, while
    some group is at stage `legacy` or `shadow`, legacy answer; else 503 naming what is not
    ready. At `primary`/`native` a legacy that is away is reported but keeps the gateway ready."""
    result = await check_readiness(request.app[GATEWAY])
    return web.json_response(result.body(), status=200 if result.ready else 503)


async def metrics_view(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    body = generate_latest(gateway.metrics.registry)
    if isinstance(gateway.native, InProcessNative):
        body += generate_latest(gateway.native.app[NATIVE_METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def stages_view(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    decisions = await gateway.store.decisions(limit=50) if gateway.store is not None else []
    return web.json_response({"groups": gateway.snapshot()["groups"], "decisions": [d.to_dict() for d in decisions]})


def _admin_refusal(request: web.Request) -> web.Response | None:
    """None when the request carries the admin token; else the 403 (no token configured) or
    401 (wrong or missing token) to answer."""
    token = request.app[CONFIG].admin.token
    if not token:
        return web.json_response(
            {"detail": "the admin API is off: set admin.token (AGNO_GATEWAY_ADMIN_TOKEN)"}, status=403
        )
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return web.json_response(
            {"detail": "Invalid or missing admin token"}, status=401, headers={"WWW-Authenticate": "Bearer"}
        )
    return None


@web.middleware
async def guard_admin(request: web.Request, handler: Any) -> web.StreamResponse:
    """The gateway's own /shadow/ paths: writes always need the admin token, reads when
    `admin.protect_reads` is set. Proxied paths are never touched here."""
    if request.path.startswith("/shadow/"):
        if request.method not in ("GET", "HEAD") or request.app[CONFIG].admin.protect_reads:
            refusal = _admin_refusal(request)
            if refusal is not None:
                return refusal
    return await handler(request)


async def set_stage_view(request: web.Request) -> web.Response:
    """POST {"group", "stage", "reason"} with `Authorization: Bearer <admin.token>` (checked
    by `guard_admin`)."""
    gateway = request.app[GATEWAY]
    try:
        data = json.loads(await request.read() or b"null")
    except ValueError:
        return web.json_response({"detail": "the body must be JSON: {group, stage, reason}"}, status=422)
    if not isinstance(data, dict):
        return web.json_response({"detail": "the body must be a JSON object: {group, stage, reason}"}, status=422)
    group, stage, reason = data.get("group"), data.get("stage"), data.get("reason") or "set by hand"
    if group not in gateway.stages:
        return web.json_response({"detail": f"unknown group {group!r}; groups: {sorted(gateway.stages)}"}, status=422)
    if stage not in STAGES:
        return web.json_response({"detail": f"unknown stage {stage!r}; stages: {list(STAGES)}"}, status=422)
    if stage != "native" and gateway.legacy is None:
        return web.json_response(
            {"detail": "no legacy side is configured: only the native stage is possible"}, status=409
        )
    previous = gateway.stages[group].to_stage
    with contextlib.suppress(Exception):
        await gateway.refresh_stages()
    await gateway.set_stage(group, stage, str(reason), "admin")
    return web.json_response({"group": group, "stage": stage, "previous": previous, "reason": reason})
