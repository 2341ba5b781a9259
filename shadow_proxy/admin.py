"""All of the gateway's own views, and the guard in front of its admin paths:

    add_gateway_routes(app)   # /healthz, /readyz, /metrics, then add_admin_routes(app)
    add_admin_routes(app)     # GET/POST /shadow/stage, GET /shadow/mismatches, GET /shadow/report(.json),
                              # POST /shadow/mismatches/{id}/recheck

- `/healthz` (liveness: no network), `/readyz` (readiness: shadow_proxy/readiness.py),
  `/metrics` (the gateway's metrics, and the in-process native service's);
- `/shadow/stage`: GET the stages and the latest decisions; POST a stage by hand;
- `/shadow/mismatches`: the stored mismatch samples as JSON (for scripts, and for replaying
  them after a fix); `/shadow/report`: the HTML report (for people), `?cohort=type|user|size`
  for the cohort table, `?refresh=N` for its refresh period; `/shadow/report.json`: the same
  page's sections, which its script polls to refresh without a reload;
- `POST /shadow/mismatches/{id}/recheck` (a write: admin token): the stored request, a read
  only, sent to both sides now and compared; the fresh comparison, redacted as samples are.

The views read `app[GATEWAY]`; the mismatch and report views need only its `store` (a
`GatewayStore`, or None when no store is configured) and `snapshot()` returning {"groups": ...,
"routes": ...} as `report.py` describes. The views do no authentication themselves:
`guard_admin` (a middleware) asks for the admin token on every write to /shadow/, and on
reads too when `admin.protect_reads` is set (they are open by default; samples are stored
redacted).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import inspect
import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from agentos_session.routing import SAFE_METHODS
from comparator import Request, compare_async
from session_service.appkeys import METRICS as NATIVE_METRICS

from .appkeys import CONFIG, GATEWAY
from .config import STAGES, GatewayConfig
from .model import Sample
from .readiness import check as check_readiness
from .redact import REDACTED
from .report import render_report, render_update
from .routestats import COHORTS, KEEP_S
from .sides import InProcessNative
from .store import GatewayStore
from .transforms import unwrapped

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
REPORT_LIMIT = 20
# How often the report page refreshes itself by default (`?refresh=N`, 0 for never), and at most.
REFRESH_S = 10
MAX_REFRESH_S = 3600

# The methods that only read an admin path: open unless `admin.protect_reads`. The guard's own
# set: HTTP's safe methods minus OPTIONS, which no admin view answers (an OPTIONS to /shadow/
# needs the token, as it always did).
ADMIN_READS = SAFE_METHODS - {"OPTIONS"}

# What a store that is down raises; the views answer 503 instead of a bare 500.
_STORE_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)


class BadQuery(ValueError):
    """A query parameter that cannot be used; the message names it."""


def add_gateway_routes(app: web.Application, *, admin_elsewhere: bool = False) -> None:
    """Register every view of the gateway's own on `app` (before its proxy catch-all). With
    `admin_elsewhere` (`admin.port` is set), `app` keeps only /healthz and /readyz (the probes
    of the client-facing port), and /metrics and /shadow/* answer 404 there: never proxied (a
    client must not reach an upstream's path of that name through the gateway by accident, nor
    learn that an admin API exists), the same JSON 404 for every method."""
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    if admin_elsewhere:
        app.router.add_route("*", "/metrics", not_here)
        app.router.add_route("*", "/shadow/{tail:.*}", not_here)
        return
    app.router.add_get("/metrics", metrics_view)
    add_admin_routes(app)


async def not_here(request: web.Request) -> web.Response:
    """/metrics and /shadow/* on the client-facing port when they have a port of their own."""
    return _detail(404, "Not Found")


def add_admin_routes(app: web.Application) -> None:
    """Register the admin views on `app` (which must hold `app[GATEWAY]` before serving)."""
    app.router.add_get("/shadow/stage", stages_view)
    app.router.add_post("/shadow/stage", set_stage_view)
    app.router.add_get("/shadow/mismatches", mismatches_view)
    app.router.add_get("/shadow/report", report_view)
    app.router.add_get("/shadow/report.json", report_json_view)
    app.router.add_post("/shadow/mismatches/{id}/recheck", recheck_view)


def _detail(status: int, detail: str) -> web.Response:
    return web.json_response({"detail": detail}, status=status)


# ---- query parsing -----------------------------------------------------------------------------


def parse_time(name: str, value: str) -> float:
    """Epoch seconds, or ISO 8601 (`2024-05-01T12:00:00Z`; no offset means UTC)."""
    try:
        epoch = float(value)
    except ValueError:
        epoch = _iso(name, value)
    try:
        datetime.fromtimestamp(epoch, UTC)  # the store needs a real timestamp: no nan, inf or year 10000
    except (ValueError, OverflowError, OSError):
        raise BadQuery(f"{name} is out of range: {value!r}") from None
    return epoch


def _iso(name: str, value: str) -> float:
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise BadQuery(f"{name} must be epoch seconds or an ISO 8601 time, got {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def parse_limit(value: str | None) -> int:
    if value is None or value == "":
        return DEFAULT_LIMIT
    try:
        limit = int(value)
    except ValueError:
        raise BadQuery(f"limit must be an integer from 1 to {MAX_LIMIT}, got {value!r}") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise BadQuery(f"limit must be from 1 to {MAX_LIMIT}, got {limit}")
    return limit


def mismatch_filters(query: Mapping[str, str]) -> dict[str, Any]:
    """The keyword arguments of `GatewayStore.mismatches` from the query string."""
    times = {name: parse_time(name, query[name]) for name in ("since", "until") if query.get(name)}
    if "since" in times and "until" in times and times["since"] > times["until"]:
        raise BadQuery("since is after until")
    return {
        "route": query.get("route") or None,
        "path": query.get("path") or None,
        "since": times.get("since"),
        "until": times.get("until"),
        "limit": parse_limit(query.get("limit")),
    }


def parse_cohort(value: str | None) -> str:
    if value is None or value == "":
        return COHORTS[0]
    if value not in COHORTS:
        raise BadQuery(f"cohort must be one of {', '.join(COHORTS)}, got {value!r}")
    return value


def parse_refresh(value: str | None) -> int:
    if value is None or value == "":
        return REFRESH_S
    try:
        seconds = int(value)
    except ValueError:
        raise BadQuery(f"refresh must be whole seconds from 0 to {MAX_REFRESH_S}, got {value!r}") from None
    if not 0 <= seconds <= MAX_REFRESH_S:
        raise BadQuery(f"refresh must be from 0 to {MAX_REFRESH_S}, got {seconds}")
    return seconds


# ---- views -------------------------------------------------------------------------------------


async def mismatches_view(request: web.Request) -> web.Response:
    """GET /shadow/mismatches?route=&path=&since=&until=&limit= : newest first."""
    try:
        filters = mismatch_filters(request.query)
    except BadQuery as exc:
        return _detail(400, str(exc))
    store: GatewayStore | None = request.app[GATEWAY].store
    if store is None:
        return _detail(503, "no mismatch store configured")
    try:
        samples = await store.mismatches(**filters)
    except _STORE_ERRORS as exc:
        return _detail(503, f"mismatch store unavailable: {exc}")
    return web.json_response(
        {"mismatches": samples, "count": len(samples)},
        dumps=lambda data: json.dumps(data, ensure_ascii=False, default=str),
    )


async def _snapshot(gateway: Any) -> dict[str, Any]:
    """`gateway.snapshot()`, awaited if the gateway made it a coroutine."""
    snapshot = gateway.snapshot()
    if inspect.isawaitable(snapshot):
        snapshot = await snapshot
    return dict(snapshot)


async def _store_data(store: GatewayStore | None, cohort: str) -> tuple[dict[str, Any], str | None]:
    """What the report shows from the store, and a note when there is none to show."""
    if store is None:
        return {}, "No mismatch store is configured: samples, top paths and stage history are not kept."
    since = time.time() - KEEP_S
    try:
        return {
            "top_paths": await store.top_paths(REPORT_LIMIT),
            "samples": await store.mismatches(limit=REPORT_LIMIT),
            "decisions": [d.to_dict() for d in await store.decisions(limit=REPORT_LIMIT)],
            "timeline": await store.route_timeline(since),
            "latency": await store.latency_counts(since),
            "cohorts": await store.cohort_counts(cohort, since),
        }, None
    except _STORE_ERRORS as exc:
        return {}, f"The mismatch store is unavailable ({exc}); only this replica's own numbers are shown."


def _side_urls(gateway: Any) -> dict[str, str | None]:
    """The base URLs a copy-as-curl uses (None: the in-process native side has none)."""
    config = getattr(gateway, "config", None)
    if not isinstance(config, GatewayConfig):
        return {"legacy": None, "native": None}
    return {"legacy": config.legacy.url, "native": config.native.url}


async def _report_data(request: web.Request) -> dict[str, Any]:
    """Everything the report shows (raises BadQuery for a bad `cohort` or `refresh`)."""
    cohort = parse_cohort(request.query.get("cohort"))
    refresh_s = parse_refresh(request.query.get("refresh"))
    gateway = request.app[GATEWAY]
    snapshot = await _snapshot(gateway)
    stored, note = await _store_data(gateway.store, cohort)
    data = {
        "generated_at": time.time(),
        "groups": snapshot.get("groups") or {},
        "routes": snapshot.get("routes") or {},
        "cohort": cohort,
        "refresh_s": refresh_s,
        "sides": _side_urls(gateway),
        **stored,
    }
    if note:
        data["note"] = note
    return data


async def report_view(request: web.Request) -> web.Response:
    """GET /shadow/report?cohort=&refresh= : the HTML page of `report.render_report`."""
    try:
        data = await _report_data(request)
    except BadQuery as exc:
        return _detail(400, str(exc))
    return web.Response(text=render_report(data), content_type="text/html", charset="utf-8")


async def report_json_view(request: web.Request) -> web.Response:
    """GET /shadow/report.json?cohort= : the page's sections, for its script's refresh."""
    try:
        data = await _report_data(request)
    except BadQuery as exc:
        return _detail(400, str(exc))
    return web.json_response(render_update(data))


async def recheck_view(request: web.Request) -> web.Response:
    """POST /shadow/mismatches/{id}/recheck : the stored request, sent to both sides now (a read
    only: a write would be applied again), compared as the mirror compares, and answered as
    JSON, redacted as a stored sample is. Headers that were stored redacted are not sent (their
    values are not kept); the answer names them. Not counted as evidence: an operator's
    question is not traffic, so the gate and the parity counts never see it."""
    gateway = request.app[GATEWAY]
    try:
        sample_id = int(request.match_info["id"])
    except ValueError:
        return _detail(422, f"a mismatch id is an integer, got {request.match_info['id']!r}")
    if gateway.store is None:
        return _detail(503, "no mismatch store configured")
    try:
        stored = await gateway.store.mismatch(sample_id)
    except _STORE_ERRORS as exc:
        return _detail(503, f"mismatch store unavailable: {exc}")
    if stored is None:
        return _detail(404, f"no stored mismatch {sample_id} (retention may have dropped it)")
    original = Request.from_dict(stored["request"])
    if original.method not in SAFE_METHODS:
        return _detail(409, f"{original.method} is a write: asking both sides again would apply it again")
    if gateway.legacy is None:
        return _detail(409, "no legacy side is configured: there is nothing to compare native with")
    dropped = sorted(k for k, v in original.headers.items() if v == REDACTED)
    headers = {k: v for k, v in original.headers.items() if v != REDACTED} | {"X-Shadow-Request": "1"}
    fresh = Request(original.method, original.target, headers, original.body)
    roles = [
        str((stored.get(role) or {}).get("side") or default)
        for role, default in (("primary", "legacy"), ("shadow", "native"))
    ]
    shadow_config = gateway.config.shadow
    route, stage = str(stored.get("route")), str(stored.get("stage"))
    primary, shadow = await asyncio.gather(
        *(
            gateway.sides.call(side, fresh, route, stage, shadow_config.timeout_s, shadow_config.max_body_bytes)
            for side in roles
        )
    )
    comparison = await compare_async(primary.response, shadow.response, gateway.judge.rules, request=fresh)
    if gateway.judge.noise is not None:
        comparison = gateway.judge.noise.judge(comparison)
    sample = Sample(
        str(stored.get("request_id")),
        time.time(),
        route,
        str(stored.get("group")),
        stage,  # type: ignore[arg-type]  # a stored stage is one of STAGES (written by the gateway)
        "mirror",
        fresh,
        primary.response,
        shadow.response,
        comparison,
    )
    if gateway.judge.redact is not None:
        sample = gateway.judge.redact(sample)
    return web.json_response(
        {
            "id": sample_id,
            "route": route,
            "stored_result": stored.get("result"),
            "result": sample.comparison.result,
            "comparison": sample.comparison.to_dict(),
            "primary": {"side": roles[0], "status": primary.response.status, "error": primary.response.error},
            "shadow": {"side": roles[1], "status": shadow.response.status, "error": shadow.response.error},
            "dropped_headers": dropped,
            "asked_at": sample.at,
        },
        dumps=lambda data: json.dumps(data, ensure_ascii=False, default=str),
    )


# ---- the operational views and the stages -----------------------------------------------------


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
    native = unwrapped(gateway.native)
    if isinstance(native, InProcessNative):  # its own metrics, on the gateway's one page
        body += generate_latest(native.app[NATIVE_METRICS].registry)
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
        if request.method not in ADMIN_READS or request.app[CONFIG].admin.protect_reads:
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
