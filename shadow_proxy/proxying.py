"""The hot path: match the route, find its group and stage, call the side the stage names, fall
back to legacy when native fails (safely), answer the client, write its one access line, and
offer the request to the mirror without waiting.

Stages, per route group:

| stage | answers | mirrored to | fallback |
|---|---|---|---|
| `legacy` | legacy | - | - |
| `shadow` | legacy | native | to native, if the group opts in |
| `primary` | native | legacy | to legacy |
| `native` | native | - | to legacy |

"Fails" means no answer, a 5xx, or a "cannot serve" answer (native is not set up for the
request: an unknown database or table, a database that is away; the list is data,
`agentos_session.sessions_api.SESSION_CANNOT_SERVE`), counted as
`shadow_fallbacks_total{reason="cannot_serve"}`. A genuine `404 Session not found` is native's
answer. A refused write is sent to legacy too, since native refused before touching any data
(except for a database that went away mid-request).

The reverse fallback is opt-in per group (`groups.<name>.fallback_to_native`, off by default)
and only at stage `shadow`: when legacy, the primary, is unavailable (no answer, a timeout, a
502/503/504; a 500 is legacy's answer), native answers a read, and a write only when it provably
never reached legacy and both sides share one database (see `Proxy`). It is counted as
`shadow_fallbacks_total{side="native"}` (fallbacks to legacy are `side="legacy"`) and logged:
the access line's `side: native` with its `fallback` reason, and one warning per route until
legacy answers that route again (then one info line), not one per request of an outage.

A CORS preflight (`OPTIONS`) belongs to the route its `Access-Control-Request-Method` names at
its path (route label `OPTIONS <template>`), so it follows that group's stage, with the same
fallback; outside every group it is legacy's.

Each client request writes one access line (`shadow_proxy.access`): method, route label, status,
duration, request id, client address, `group` (`unrouted` outside every group), `stage`, the
`side` that answered and the `fallback` reason, if any. Mirrored copies write none; header
values and bodies are never logged.
"""

from __future__ import annotations

import logging
import time

from aiohttp import web

from agentos_session.routing import SAFE_METHODS, Match, RouteTable
from agentos_session.sessions_api import cannot_serve
from comparator import Request, Response
from session_service.middleware import request_id_of

from .config import GatewayConfig, Group, Stage
from .metrics import GatewayMetrics
from .mirroring import Job, Mirror
from .rollout import PLAN, Rollout
from .sides import Answer, Sides

log = logging.getLogger("shadow_proxy")
access_log = logging.getLogger("shadow_proxy.access")
UNROUTED = "unrouted"  # the access line's `group` for a request outside every group

# RFC 9110 §7.6.1 hop-by-hop headers, plus what the gateway sets itself.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "accept-encoding",
    }
)
RESPONSE_DROP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "date", "server"})


def forward_headers(request: web.Request, request_id: str) -> dict[str, str]:
    """The client's headers for an upstream: hop-by-hop ones dropped (RFC 9110), the client's
    address appended to X-Forwarded-For, X-Forwarded-Proto/Host set, Authorization kept, and
    the request id passed on. The Host header is the upstream's own (never a `-shadow` name)."""
    headers: dict[str, str] = {}
    connection_named = {h.strip().lower() for h in request.headers.get("Connection", "").split(",") if h.strip()}
    for name, value in request.headers.items():
        lower = name.lower()
        if lower in HOP_BY_HOP or lower in connection_named:
            continue
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    peer = request.remote or ""
    prior = request.headers.get("X-Forwarded-For")
    headers["X-Forwarded-For"] = f"{prior}, {peer}" if prior and peer else (prior or peer)
    headers.setdefault("X-Forwarded-Proto", request.scheme)
    if request.host:
        headers.setdefault("X-Forwarded-Host", request.host)
    headers["X-Request-ID"] = request_id
    return headers


class Proxy:
    """Answers each client request from the side its group's stage names."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        sides: Sides,
        rollout: Rollout,
        mirror: Mirror,
        routes: RouteTable,
        metrics: GatewayMetrics,
    ) -> None:
        self.config = config
        self.sides = sides
        self.rollout = rollout
        self.mirror = mirror
        self.routes = routes
        self.metrics = metrics
        # Routes answered by native because legacy was unavailable, since legacy last answered
        # them: the reverse fallback is logged once per outage and route, not once per request
        # (every request still has its access line, `side: native` with the reason).
        self.legacy_away: set[str] = set()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        # The caller's id only if it is a sane token (it is forwarded and logged), as the service does.
        request_id = request_id_of(request.headers.get("X-Request-ID"))
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:  # (it has no max_size attribute: the limit is ours)
            limit = self.config.listen.max_body_bytes
            refused = json_error(413, f"Request body too large (limit {limit} bytes)", request_id)
            access(request, refused.status, started, request_id, self.routes.label(request.method, request.path))
            return refused
        exchange = Request(request.method, request.raw_path, forward_headers(request, request_id), body)
        matched = self.routes.match(request.method, request.path)
        route = matched.label(request.method)
        group = self.config.group_of(route)
        if request.method == "OPTIONS":
            # A CORS preflight belongs to the route it asks about, so it follows that route's
            # stage (and falls back the same way); the UI sends one before each JSON request.
            matched, route, group = self._preflight(request, matched, route, group)
        stage = self.rollout.stage_of(group)
        primary_side, shadow_side = PLAN[stage]

        answer = await self._call(primary_side, exchange, route, stage)
        served_by, fallback = primary_side, None
        refusal = None if answer.response.error else cannot_serve(answer.response.status, answer.response.body)
        # What the gate counts as a native error: a failure, or a "cannot serve" answer that
        # legacy then answers otherwise. A refusal legacy repeats byte for byte (a db_id neither
        # side knows) is the client's mistake, answered right by native: counting it would let
        # a client's bad ids roll a route back.
        native_error = answer.failed or refusal is not None
        native_answer = answer.response
        if primary_side == "native" and (answer.failed or refusal) and self.sides.legacy is not None:
            reason = (
                "timeout"
                if answer.timed_out
                else "connection_error"
                if answer.response.error
                else "cannot_serve"
                if refusal
                else "5xx"
            )
            retry_safe = request.method in SAFE_METHODS or not answer.reached
            if refusal is not None and refusal.nothing_done:
                retry_safe = True  # native refused before touching any data
            if retry_safe:
                self.metrics.fallbacks.labels(route, reason, "legacy").inc()
                answer = await self._call("legacy", exchange, route, stage)
                served_by, fallback = "legacy", reason
                if not native_answer.error and native_answer.status < 500:
                    native_error = not _same_answer(native_answer, answer.response)
            else:
                log.warning(
                    "native failed a %s (%s) that may have reached it; not retried on legacy",
                    route,
                    reason,
                    extra={"request_id": request_id},
                )
        elif stage == "shadow" and group is not None and group.fallback_to_native:
            if legacy_unavailable(answer):
                answer, served_by, fallback = await self._to_native(request, exchange, answer, route, group, request_id)
            elif route in self.legacy_away:
                self.legacy_away.discard(route)
                log.info("legacy answers %s again (fallback_to_native no longer used)", route)
        if primary_side == "native" and group is not None:
            self.rollout.windows[group.name].observe_native(native_error)
        if group is not None and shadow_side is not None:
            if served_by != primary_side:
                self.metrics.mirror_skipped.labels(route, "fallback").inc()
            elif answer.response.error is not None:  # nothing to compare the copy with
                self.metrics.mirror_skipped.labels(route, "primary_error").inc()
            else:
                job = Job("mirror", request_id, time.time(), route, group, stage, exchange, answer, shadow_side)
                self.mirror.offer(job, matched.params)
        response = respond(answer, served_by, request_id)
        access(
            request,
            response.status,
            started,
            request_id,
            route,
            group.name if group else UNROUTED,
            stage,
            served_by,
            fallback,
        )
        return response

    async def _to_native(
        self, request: web.Request, exchange: Request, answer: Answer, route: str, group: Group, request_id: str
    ) -> tuple[Answer, str, str | None]:
        """The reverse fallback (`groups.<name>.fallback_to_native`, stage `shadow` only): legacy,
        the primary, is unavailable, so native answers. A read always may; a write only when it
        provably never reached legacy (connection refused) and both sides share one database
        (`shadow.mirror_writes` off): then native applying it is the one time it is applied, in
        the same data legacy reads. A write that may have reached legacy (a timeout, a 503 from
        it or from a balancer in front of it) keeps legacy's answer: sent to native too, it
        could be applied twice. Counted as `shadow_fallbacks_total{side="native"}`."""
        reason = "timeout" if answer.timed_out else "connection_error" if answer.response.error else "5xx"
        shared_data = not self.config.shadow.mirror_writes
        if request.method not in SAFE_METHODS and (answer.reached or not shared_data):
            log.warning(
                "legacy failed a %s (%s) that may have reached it; not sent to native",
                route,
                reason,
                extra={"request_id": request_id},
            )
            return answer, "legacy", None
        self.metrics.fallbacks.labels(route, reason, "native").inc()
        if route not in self.legacy_away:
            self.legacy_away.add(route)
            log.warning(
                "legacy failed a %s (%s); answered by native (fallback_to_native of group %s) until legacy answers again",
                route,
                reason,
                group.name,
                extra={"request_id": request_id},
            )
        native = await self._call("native", exchange, route, "shadow")
        self.rollout.windows[group.name].observe_native(native.failed, "shadow")
        return native, "native", reason

    def _preflight(
        self, request: web.Request, matched: Match, route: str, group: Group | None
    ) -> tuple[Match, str, Group | None]:
        """An OPTIONS request's route for grouping: the route its `Access-Control-Request-Method`
        (GET when absent) names at this path, labelled `OPTIONS <template>`; unchanged when
        that route is in no group."""
        asked = request.headers.get("Access-Control-Request-Method", "GET").strip().upper() or "GET"
        target = self.routes.match(asked, request.path)
        target_group = self.config.group_of(target.label(asked)) if target.route is not None else None
        if target_group is None:
            return matched, route, group
        return target, f"OPTIONS {target.template}", target_group

    async def _call(self, side: str, request: Request, route: str, stage: Stage) -> Answer:
        timeout_s = self.config.legacy.timeout_s if side == "legacy" else self.config.native.timeout_s
        return await self.sides.call(side, request, route, stage, timeout_s)


# What "legacy is down" means for the reverse fallback: no answer (connection refused or reset,
# a timeout) or a status that says the server or a balancer in front of it is unavailable. A
# 500 is legacy's answer: agno answers 500 to some client mistakes (config/known_differences.yaml),
# and at stage `shadow` legacy's answer is what the client gets; swapping it for native's would
# change answers while legacy is up, and count a client's mistake as legacy being down.
LEGACY_UNAVAILABLE = frozenset({502, 503, 504})


def legacy_unavailable(answer: Answer) -> bool:
    return answer.response.error is not None or answer.response.status in LEGACY_UNAVAILABLE


def respond(answer: Answer, served_by: str, request_id: str) -> web.StreamResponse:
    """The client's response: the side's answer (minus per-connection headers), or a 504/502
    naming the side when there was no answer."""
    r = answer.response
    if r.error is not None:
        if answer.timed_out:
            return json_error(504, f"Gateway timeout: {served_by} did not answer in time", request_id)
        return json_error(502, f"Bad gateway: {served_by} did not answer ({r.error})", request_id)
    headers = {k: v for k, v in r.headers.items() if k.lower() not in RESPONSE_DROP}
    headers["X-Request-ID"] = request_id
    return web.Response(status=r.status, body=r.body, headers=headers)


def access(
    request: web.Request,
    status: int,
    started: float,
    request_id: str,
    route: str,
    group: str | None = None,
    stage: Stage | None = None,
    side: str | None = None,
    fallback: str | None = None,
) -> None:
    """The client request's one access line. `side` is None when the gateway answered itself
    (a body over its limit); `fallback` is the reason native's answer was replaced by legacy's."""
    access_log.info(
        "request",
        extra={
            "fields": {
                "method": request.method,
                "route": route,
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                "request_id": request_id,
                "client_ip": request.remote,
                "group": group,
                "stage": stage,
                "side": side,
                "fallback": fallback,
            }
        },
    )


def json_error(status: int, detail: str, request_id: str) -> web.Response:
    return web.json_response({"detail": detail}, status=status, headers={"X-Request-ID": request_id})


def _same_answer(native: Response, legacy: Response) -> bool:
    """Whether legacy repeated native's answer: the same status and body bytes."""
    return native.status == legacy.status and native.body == legacy.body
