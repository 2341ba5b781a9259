"""The gateway: answer from the side the stage names, mirror a sample to the other side off the
hot path, compare, count, store what differs, and move each route group through the stages.

Stages, per route group:

| stage | answers | mirrored to | fallback to legacy |
|---|---|---|---|
| `legacy` | legacy | - | - |
| `shadow` | legacy | native | - |
| `primary` | native | legacy | yes |
| `native` | native | - | yes |

The client's answer never waits for the shadow: the request handler only puts a job on a
bounded queue (`put_nowait`), and a fixed set of workers send, compare and store. Writes are
never applied twice when both sides share one database: a write goes to the primary only and,
once it succeeded, the workers read the affected session back from both sides and compare
(`shadow.mirror_writes: true` mirrors writes instead, for a shadow with its own database).
A mismatch on a read is asked of both sides once more before it counts: the first two answers
were taken at different moments, and another client's write in between is not a parity bug.

Each client request writes one access line (`shadow_proxy.access`): method, route label, status,
duration, request id, client address, `group` (`unrouted` outside every group), `stage`, the
`side` that answered and the `fallback` reason, if any. Mirrored copies write none; header
values and bodies are never logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from aiohttp import web

from comparator import Comparison, Difference, Request, Response, Rules, compare_async
from comparator.noise import NoiseModel
from session_service.middleware import request_id_of
from session_service.routes import match as match_route
from session_service.routes import route_template

from .config import GatewayConfig, Group, Stage
from .gate import GroupWindows, Window, decide
from .metrics import GatewayMetrics, code_class
from .model import Decision, Origin, Sample
from .sides import Answer, Side
from .store import GatewayStore

log = logging.getLogger("shadow_proxy")
access_log = logging.getLogger("shadow_proxy.access")
UNROUTED = "unrouted"  # the access line's `group` for a request outside every group

from agentos_session.routing import SAFE_METHODS as IDEMPOTENT  # noqa: E402  (RFC 9110 safe methods)

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
# Distinct `path` label values of shadow_mismatch_paths_total per route; the rest is OTHER_PATHS.
MAX_PATH_LABELS = 100
OTHER_PATHS = "<other>"
# Query parameters of a write that also select what to read back when verifying it.
VERIFY_QUERY = ("db_id", "table", "type", "user_id")

# Stage -> (primary side, shadow side)
PLAN: dict[Stage, tuple[str, str | None]] = {
    "legacy": ("legacy", None),
    "shadow": ("legacy", "native"),
    "primary": ("native", "legacy"),
    "native": ("native", None),
}


@dataclass(frozen=True)
class Job:
    """A mirrored copy to send, or a write to verify, with what the hot path already knows."""

    kind: Origin
    request_id: str
    at: float
    route: str
    group: Group
    stage: Stage
    request: Request
    primary: Answer
    shadow_side: str


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


def sticky_value(group: Group, request: Request, params: dict[str, str]) -> str | None:
    """The value sticky sampling hashes, so a whole user flow (or session) is mirrored or not."""
    if group.sticky == "user_id":
        return request.query.get("user_id", [None])[0]
    if group.sticky == "session_id":
        if "session_id" in params:
            return params["session_id"]
        try:
            body = json.loads(request.body or b"null")
        except ValueError:
            return None
        return body.get("session_id") if isinstance(body, dict) and isinstance(body.get("session_id"), str) else None
    return None


def bounded_label(seen: set[str], template: str) -> str:
    """Path templates are bounded by the JSON's shape, but keys chosen by users (session_state,
    metadata) can be many: past MAX_PATH_LABELS (per route, `seen`) they share one label."""
    if template in seen or len(seen) < MAX_PATH_LABELS:
        seen.add(template)
        return template
    return OTHER_PATHS


def sampled(group: Group, request: Request, params: dict[str, str], rng: random.Random) -> bool:
    if group.sample_rate >= 1.0:
        return True
    if group.sample_rate <= 0.0:
        return False
    key = sticky_value(group, request, params)
    if key is not None:
        return zlib.crc32(f"{group.name}:{key}".encode()) / 2**32 < group.sample_rate
    return rng.random() < group.sample_rate


class Gateway:
    """Everything the gateway does per request, and its background work."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        legacy: Side | None,
        native: Side,
        rules: Rules,
        noise: NoiseModel | None,
        metrics: GatewayMetrics,
        store: GatewayStore | None,
        recorder: Any = None,
        redact: Any = None,
    ) -> None:
        self.config = config
        self.legacy = legacy
        self.native = native
        self.rules = rules
        self.noise = noise
        self.metrics = metrics
        self.store = store
        self.recorder = recorder
        self.redact = redact  # (Sample) -> Sample, applied before storing or logging a sample
        why = "initial stage from the configuration" if legacy is not None else "no legacy side: all native"
        self.stages: dict[str, Decision] = {
            g.name: Decision(g.name, None, self._allowed(g.stage), why, "config") for g in config.groups
        }
        self.windows = {g.name: GroupWindows.sized(config.gate.window) for g in config.groups}
        self.route_windows: dict[str, Window] = {}
        self.route_counts: dict[str, Counter[str]] = {}
        self.path_labels: dict[str, set[str]] = {}
        self.queue: asyncio.Queue[Job] = asyncio.Queue(maxsize=config.shadow.queue_size)
        self.inflight = 0
        self.executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="compare")
        self.rng = random.Random()
        for group in config.groups:
            metrics.set_stage(group.routes, self.stages[group.name].to_stage)

    def _allowed(self, stage: Stage) -> Stage:
        return stage if self.legacy is not None else "native"

    def side(self, name: str) -> Side:
        if name == "legacy":
            assert self.legacy is not None
            return self.legacy
        return self.native

    def stage_of(self, group: Group | None) -> Stage:
        if group is None:  # outside every group: legacy's, unmirrored (native if there is no legacy)
            return "legacy" if self.legacy is not None else "native"
        return self.stages[group.name].to_stage

    # ---- the hot path -------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        # The caller's id only if it is a sane token (it is forwarded and logged), as the service does.
        request_id = request_id_of(request.headers.get("X-Request-ID"))
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:  # (it has no max_size attribute: the limit is ours)
            limit = self.config.listen.max_body_bytes
            refused = _json_error(413, f"Request body too large (limit {limit} bytes)", request_id)
            _access(request, refused.status, started, request_id, route_template(request.method, request.path))
            return refused
        exchange = Request(request.method, request.raw_path, forward_headers(request, request_id), body)
        matched = match_route(request.method, request.path)
        route = matched.label(request.method)
        group = self.config.group_of(route)
        stage = self.stage_of(group)
        primary_side, shadow_side = PLAN[stage]

        answer = await self._call(primary_side, exchange, route, stage, self._timeout(primary_side))
        served_by, fallback = primary_side, None
        if primary_side == "native" and group is not None:
            self.windows[group.name].observe_native(answer.failed)
        if primary_side == "native" and answer.failed and self.legacy is not None:
            reason = "timeout" if answer.timed_out else ("connection_error" if answer.response.error else "5xx")
            if request.method in IDEMPOTENT or not answer.reached:
                self.metrics.fallbacks.labels(route, reason).inc()
                answer = await self._call("legacy", exchange, route, stage, self.config.legacy.timeout_s)
                served_by, fallback = "legacy", reason
            else:
                log.warning(
                    "native failed a %s (%s) that may have reached it; not retried on legacy",
                    route,
                    reason,
                    extra={"request_id": request_id},
                )
        if group is not None and shadow_side is not None:
            if served_by != primary_side:
                self.metrics.mirror_skipped.labels(route, "fallback").inc()
            elif answer.response.error is not None:  # nothing to compare the copy with
                self.metrics.mirror_skipped.labels(route, "primary_error").inc()
            else:
                self._after(
                    Job("mirror", request_id, time.time(), route, group, stage, exchange, answer, shadow_side),
                    matched.params,
                )
        response = self._respond(answer, served_by, request_id)
        _access(
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

    def _timeout(self, side: str) -> float:
        return self.config.legacy.timeout_s if side == "legacy" else self.config.native.timeout_s

    async def _call(self, side: str, request: Request, route: str, stage: Stage, timeout_s: float) -> Answer:
        answer = await self.side(side).send(request, timeout_s)
        self.metrics.requests.labels(route, stage, side, code_class(answer.response.status)).inc()
        self.metrics.upstream_duration.labels(route, side).observe(answer.elapsed_s)
        return answer

    def _respond(self, answer: Answer, served_by: str, request_id: str) -> web.StreamResponse:
        r = answer.response
        if r.error is not None:
            if answer.timed_out:
                return _json_error(504, f"Gateway timeout: {served_by} did not answer in time", request_id)
            return _json_error(502, f"Bad gateway: {served_by} did not answer ({r.error})", request_id)
        headers = {k: v for k, v in r.headers.items() if k.lower() not in RESPONSE_DROP}
        headers["X-Request-ID"] = request_id
        return web.Response(status=r.status, body=r.body, headers=headers)

    def _after(self, job: Job, params: dict[str, str]) -> None:
        """Decide, without waiting, what happens off the hot path: a mirrored copy, a write
        verification, or nothing (counted with its reason)."""
        route, config = job.route, self.config.shadow
        is_write = job.request.method not in IDEMPOTENT
        if is_write and not config.mirror_writes:
            if not 200 <= job.primary.response.status < 300:  # nothing was written: nothing to verify
                self.metrics.mirror_skipped.labels(route, "method").inc()
                return
            job = replace(job, kind="verify")
        if not sampled(job.group, job.request, params, self.rng):
            self.metrics.mirror_skipped.labels(route, "sampled_out").inc()
            return
        if len(job.request.body) > config.max_body_bytes or len(job.primary.response.body) > config.max_body_bytes:
            self.metrics.mirror_skipped.labels(route, "body_too_large").inc()
            return
        try:
            self.queue.put_nowait(job)
        except asyncio.QueueFull:
            self.metrics.mirror_skipped.labels(route, "queue_full").inc()
            return
        self.metrics.mirror_queue.set(self.queue.qsize())

    # ---- off the hot path ---------------------------------------------------------------------

    async def worker(self) -> None:
        """One of `shadow.max_inflight` workers: so at most that many copies are in flight."""
        while True:
            job = await self.queue.get()
            self.metrics.mirror_queue.set(self.queue.qsize())
            self.inflight += 1
            self.metrics.mirror_inflight.set(self.inflight)
            try:
                if job.kind == "verify":
                    await self._verify(job)
                else:
                    await self._mirror(job)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug here must not stop the worker; it is logged with its trace
                log.exception("mirror job for %s failed", job.route, extra={"request_id": job.request_id})
            finally:
                self.inflight -= 1
                self.metrics.mirror_inflight.set(self.inflight)
                self.queue.task_done()

    async def _mirror(self, job: Job) -> None:
        copy = replace(job.request, headers={**job.request.headers, "X-Shadow-Request": "1"})
        answer = await self._call(job.shadow_side, copy, job.route, job.stage, self.config.shadow.timeout_s)
        if job.shadow_side == "native":
            self.windows[job.group.name].observe_native(answer.failed)
        if self.recorder is not None:
            self.recorder.write(job.at, job.request_id, job.route, job.request)
        if answer.response.error is not None:
            self.metrics.mirror_skipped.labels(job.route, "timeout" if answer.timed_out else "shadow_error").inc()
            return
        pair = await self._recheck(job, job.request, job.primary.response, answer.response)
        await self._judged(job, job.request, *pair)

    async def _recheck(
        self, job: Job, request: Request, primary: Response, shadow: Response
    ) -> tuple[Response, Response, Comparison]:
        """Compare, and confirm a mismatch on a read by asking both sides once more: the two
        first answers were taken at different moments, and a write in between (by any client)
        makes them differ without any parity bug. If the second pair agrees, it is the verdict;
        if it still differs, the mismatch is confirmed (`shadow_rechecks_total`)."""
        comparison = await self._compare(primary, shadow, request)
        if comparison.result != "mismatch" or request.method not in IDEMPOTENT:
            return primary, shadow, comparison
        primary_side = PLAN[job.stage][0]
        timeout_s = self.config.shadow.timeout_s
        again = await asyncio.gather(
            self._call(primary_side, request, job.route, job.stage, timeout_s),
            self._call(job.shadow_side, request, job.route, job.stage, timeout_s),
        )
        if again[0].response.error is None and again[1].response.error is None:
            second = await self._compare(again[0].response, again[1].response, request)
            if second.ok:
                self.metrics.rechecks.labels(job.route, "cleared").inc()
                return again[0].response, again[1].response, second
        self.metrics.rechecks.labels(job.route, "confirmed").inc()
        return primary, shadow, comparison

    async def _compare(self, primary: Response, shadow: Response, request: Request) -> Comparison:
        comparison = await compare_async(
            primary,
            shadow,
            self.rules,
            request=request,
            executor=self.executor,
            offload_bytes=self.config.shadow.compare_offload_bytes,
        )
        if self.noise is not None:
            self.noise.observe(comparison)
            comparison = self.noise.judge(comparison)
        return comparison

    async def _judged(
        self, job: Job, request: Request, primary: Response, shadow: Response, comparison: Comparison
    ) -> None:
        """Count a comparison (under the job's route), feed the gate, store what differs."""
        route = job.route
        self.metrics.comparisons.labels(route, comparison.result).inc()
        self.route_counts.setdefault(route, Counter())[comparison.result] += 1
        self.windows[job.group.name].observe_comparison(comparison.result)
        if comparison.result in ("match", "expected", "mismatch"):
            window = self.route_windows.setdefault(route, Window(self.config.gate.window))
            window.add(comparison.result == "mismatch")
            self.metrics.parity_ratio.labels(route).set(1 - window.failures / window.total)
        if comparison.ok:
            return
        seen = self.path_labels.setdefault(route, set())
        for template in sorted({d.template for d in comparison.differences}):
            self.metrics.mismatch_paths.labels(route, bounded_label(seen, template)).inc()
        sample = Sample(
            job.request_id, job.at, route, job.group.name, job.stage, job.kind, request, primary, shadow, comparison
        )
        if self.redact is not None:
            size = len(request.body) + len(primary.body) + len(shadow.body)
            if size >= self.config.shadow.compare_offload_bytes:  # a tree walk, like a large diff: off the loop
                sample = await asyncio.get_running_loop().run_in_executor(self.executor, self.redact, sample)
            else:
                sample = self.redact(sample)
        log.info(
            "%s %s: %d difference(s) at %s",
            comparison.result,
            route,
            len(comparison.differences),
            ", ".join(sorted({d.template for d in comparison.differences})) or comparison.reason,
            extra={"request_id": job.request_id},
        )
        if self.store is not None:
            try:
                await self.store.record(sample)
            except Exception:
                self.metrics.store_errors.inc()
                log.exception("could not store a %s sample", comparison.result, extra={"request_id": job.request_id})

    async def _verify(self, job: Job) -> None:
        """Read back what a write touched, from both sides, and compare. A delete must leave
        the session missing (404) on both."""
        deleted = job.request.method == "DELETE"
        query = [
            (k, v)
            for k, v in parse_qsl(job.request.target.partition("?")[2], keep_blank_values=True)
            if k in VERIFY_QUERY
        ]
        suffix = f"?{urlencode(query)}" if query else ""
        headers = {k: v for k, v in job.request.headers.items() if k.lower() not in ("content-type",)}
        headers["X-Shadow-Request"] = "1"
        primary_side = PLAN[job.stage][0]
        for session_id in self._written_sessions(job):
            for path in [""] if deleted else ["", "/runs"]:
                read = Request("GET", f"/sessions/{quote(session_id, safe='')}{path}{suffix}", headers, b"")
                first, second = await asyncio.gather(
                    self._call(primary_side, read, job.route, job.stage, self.config.shadow.timeout_s),
                    self._call(job.shadow_side, read, job.route, job.stage, self.config.shadow.timeout_s),
                )
                if first.response.error or second.response.error:
                    failed = second if second.response.error else first
                    self.metrics.mirror_skipped.labels(
                        job.route, "timeout" if failed.timed_out else "shadow_error"
                    ).inc()
                    continue
                left, right, comparison = await self._recheck(job, read, first.response, second.response)
                if deleted and comparison.ok and left.status != 404:
                    comparison = Comparison(
                        "mismatch",
                        (Difference(":status", "status", left.status, right.status),),
                        comparison.route,
                        reason="the deleted session can still be read",
                    )
                await self._judged(job, read, left, right, comparison)

    def _written_sessions(self, job: Job) -> list[str]:
        params = match_route(job.request.method, job.request.path).params
        if "session_id" in params:
            return [params["session_id"]]
        try:
            if job.request.method == "POST":  # create: the id the primary answered with
                created = json.loads(job.primary.response.body)
                return [created["session_id"]] if isinstance(created, dict) and created.get("session_id") else []
            body = json.loads(job.request.body or b"null")  # bulk delete: the ids asked for
            ids = body.get("session_ids") if isinstance(body, dict) else None
            return [i for i in ids if isinstance(i, str)] if isinstance(ids, list) else []
        except ValueError:
            return []

    # ---- stages -------------------------------------------------------------------------------

    def apply_stages(self, stored: dict[str, Decision]) -> None:
        """Adopt the stored stages (from any replica); a changed group starts fresh windows."""
        for group in self.config.groups:
            decision = stored.get(group.name)
            if decision is None:
                continue
            decision = replace(decision, to_stage=self._allowed(decision.to_stage))
            if decision.to_stage != self.stages[group.name].to_stage:
                log.info(
                    "group %s is now at stage %s (%s, by %s)",
                    group.name,
                    decision.to_stage,
                    decision.reason,
                    decision.by,
                )
                self.windows[group.name].reset()
                self.metrics.set_stage(group.routes, decision.to_stage)
            self.stages[group.name] = decision

    async def refresh_stages(self) -> None:
        if self.store is not None:
            self.apply_stages(await self.store.stages())

    async def set_stage(self, group: str, stage: Stage, reason: str, by: str, expect: Stage | None = None) -> bool:
        """Apply a stage change for every replica (through the store), then here."""
        current = self.stages[group].to_stage
        decision = Decision(group, current, stage, reason, by, time.time())
        if self.store is not None:
            if not await self.store.set_stage(decision, expect=expect):
                return False
        self.metrics.decisions.labels(group, current, stage, by).inc()
        log.info("stage of %s: %s -> %s by %s: %s", group, current, stage, by, reason)
        self.apply_stages({group: decision})
        return True

    async def gate_step(self) -> list[Decision]:
        """One round of the parity gate over every group; returns the decisions applied."""
        applied = []
        for group in self.config.groups:
            current = self.stages[group.name].to_stage
            decision = decide(group.name, current, self.windows[group.name], self.config.gate)
            if decision is None or (decision.to_stage != "native" and self.legacy is None):
                continue
            if await self.set_stage(group.name, decision.to_stage, decision.reason, "gate", expect=current):
                applied.append(decision)
        return applied

    # ---- reporting ----------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """This replica's view, for the report page and `GET /shadow/stage`."""
        groups = {
            g.name: {
                "stage": self.stages[g.name].to_stage,
                "routes": list(g.routes),
                "decided_by": self.stages[g.name].by,
                "reason": self.stages[g.name].reason,
                "sample_rate": g.sample_rate,
                "window": {
                    "comparisons": self.windows[g.name].comparisons.total,
                    "mismatches": self.windows[g.name].comparisons.failures,
                    "native_calls": self.windows[g.name].native_calls.total,
                    "native_errors": self.windows[g.name].native_calls.failures,
                },
            }
            for g in self.config.groups
        }
        routes = {}
        for route, counts in sorted(self.route_counts.items()):
            window = self.route_windows.get(route)
            parity = 1 - window.failures / window.total if window and window.total else None
            routes[route] = {r: counts.get(r, 0) for r in ("match", "expected", "mismatch", "error")} | {
                "parity": parity
            }
        return {
            "generated_at": time.time(),
            "groups": groups,
            "routes": routes,
            "mirror": {"queue": self.queue.qsize(), "inflight": self.inflight},
        }


def _access(
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


def _json_error(status: int, detail: str, request_id: str) -> web.Response:
    return web.json_response({"detail": detail}, status=status, headers={"X-Request-ID": request_id})
