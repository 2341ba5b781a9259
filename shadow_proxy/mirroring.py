"""Off the hot path: which requests are mirrored (sampling, sticky per user or session), the
bounded queue and its workers, the recheck of a read's mismatch, the read-back of a write, and
the verdicts: counted, fed to the gate, and the differing ones redacted and stored.

The client's answer never waits for any of it: the hot path only calls `Mirror.offer`, which
puts a `Job` on a bounded queue (`put_nowait`; `shadow.queue_size` copies and
`shadow.queue_max_bytes` of the bodies they hold) or counts why not, and `shadow.max_inflight`
workers send, compare and store. Writes are never applied twice when both sides share one
database: a write goes to the primary only and, once it succeeded, the workers read back what it
touched from both sides and compare (`shadow.mirror_writes: true` mirrors writes instead, for a
shadow with its own database). What a write touched and what to read back is data given to the
gateway (`agentos_session.sessions_api.SESSION_WRITES`). A mismatch on a read is asked of both
sides once more before it counts: the first two answers were taken at different moments, and
another client's write in between is not a parity bug.

A job holds plain values (the `Request` and the primary's `Answer`): nothing of the client's
connection outlives its request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import zlib
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl

from agentos_session.routing import SAFE_METHODS, RouteTable
from agentos_session.sessions_api import WriteVerification
from comparator import Comparison, Difference, Request, Response, Rules, compare_async
from comparator.model import RESULTS
from comparator.noise import NoiseModel

from .config import GatewayConfig, Group, Stage
from .gate import GroupWindows, Window
from .metrics import GatewayMetrics
from .model import Origin, Sample
from .recorder import Recorder
from .rollout import PLAN
from .routestats import RouteStats, cohorts
from .sides import Answer, Sides
from .store import GatewayStore

log = logging.getLogger("shadow_proxy")

# Distinct `path` label values of shadow_mismatch_paths_total per route; the rest is OTHER_PATHS.
MAX_PATH_LABELS = 100
OTHER_PATHS = "<other>"


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


def sampled(group: Group, request: Request, params: dict[str, str], rng: random.Random) -> bool:
    if group.sample_rate >= 1.0:
        return True
    if group.sample_rate <= 0.0:
        return False
    key = sticky_value(group, request, params)
    if key is not None:
        return zlib.crc32(f"{group.name}:{key}".encode()) / 2**32 < group.sample_rate
    return rng.random() < group.sample_rate


def bounded_label(seen: set[str], template: str) -> str:
    """Path templates are bounded by the JSON's shape, but keys chosen by users (session_state,
    metadata) can be many: past MAX_PATH_LABELS (per route, `seen`) they share one label."""
    if template in seen or len(seen) < MAX_PATH_LABELS:
        seen.add(template)
        return template
    return OTHER_PATHS


class Tally:
    """This replica's verdicts per route: counts, the parity window, the mismatch path labels."""

    def __init__(self, window: int, metrics: GatewayMetrics) -> None:
        self.window = window
        self.metrics = metrics
        self.windows: dict[str, Window] = {}
        self.counts: dict[str, Counter[str]] = {}
        self.known: dict[str, Counter[str]] = {}  # per route, the known difference behind each `expected`
        self.path_labels: dict[str, set[str]] = {}

    def count(self, route: str, comparison: Comparison) -> None:
        self.metrics.comparisons.labels(route, comparison.result).inc()
        self.counts.setdefault(route, Counter())[comparison.result] += 1
        if comparison.result == "expected" and comparison.known:
            self.known.setdefault(route, Counter())[comparison.known] += 1
        if comparison.result in ("match", "expected", "mismatch"):
            window = self.windows.setdefault(route, Window(self.window))
            window.add(comparison.result == "mismatch")
            self.metrics.parity_ratio.labels(route).set(1 - window.failures / window.total)
        if not comparison.ok:
            seen = self.path_labels.setdefault(route, set())
            for template in sorted({d.template for d in comparison.differences}):
                self.metrics.mismatch_paths.labels(route, bounded_label(seen, template)).inc()

    def routes_view(self) -> dict[str, dict[str, Any]]:
        routes = {}
        for route, counts in sorted(self.counts.items()):
            window = self.windows.get(route)
            parity = 1 - window.failures / window.total if window and window.total else None
            known = dict(sorted(self.known.get(route, Counter()).items()))
            routes[route] = {r: counts.get(r, 0) for r in RESULTS} | {"parity": parity, "known": known}
        return routes


class Judge:
    """Compares two answers (the comparator, then the noise model) and settles the verdict:
    counted, fed to the group's gate window, and a differing sample redacted and stored."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        rules: Rules,
        noise: NoiseModel | None,
        tally: Tally,
        store: GatewayStore | None,
        redact: Callable[[Sample], Sample] | None,
        metrics: GatewayMetrics,
        stats: RouteStats | None = None,
        pages: frozenset[str] = frozenset(),
    ) -> None:
        self.rules = rules
        self.pages = pages  # routes answering a page: no session fields in it for the cohorts
        self.stats = stats  # the report's per-route counts (cohorts, latency), for every replica
        self.noise = noise
        self.tally = tally
        self.store = store
        self.redact = redact
        self.metrics = metrics
        self.offload_bytes = config.shadow.compare_offload_bytes
        self.executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="compare")

    async def compare(self, primary: Response, shadow: Response, request: Request) -> Comparison:
        comparison = await compare_async(
            primary, shadow, self.rules, request=request, executor=self.executor, offload_bytes=self.offload_bytes
        )
        if self.noise is not None:
            self.noise.observe(comparison)
            comparison = self.noise.judge(comparison)
        return comparison

    async def settle(
        self, job: Job, windows: GroupWindows, request: Request, pair: tuple[Response, Response, Comparison]
    ) -> None:
        """Count a comparison (under the job's route), feed the gate, store what differs."""
        primary, shadow, comparison = pair
        self.tally.count(job.route, comparison)
        windows.observe_comparison(comparison.result, job.stage)
        if self.stats is not None:
            self.stats.add_comparison(
                job.route, comparison.result, cohorts(request, primary, page=job.route in self.pages)
            )
        if comparison.ok:
            return
        sample = Sample(
            job.request_id, job.at, job.route, job.group.name, job.stage, job.kind, request, primary, shadow, comparison
        )
        if self.redact is not None:
            size = len(request.body) + len(primary.body) + len(shadow.body)
            if size >= self.offload_bytes:  # a tree walk, like a large diff: off the loop
                sample = await asyncio.get_running_loop().run_in_executor(self.executor, self.redact, sample)
            else:
                sample = self.redact(sample)
        log.info(
            "%s %s: %d difference(s) at %s",
            comparison.result,
            job.route,
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

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


def held_bytes(job: Job) -> int:
    """What a queued job keeps alive besides its fixed-size parts: the request's target and body
    and the primary's answer body (which it is compared with)."""
    return len(job.request.target) + len(job.request.body) + len(job.primary.response.body)


class Mirror:
    """The bounded queue (in copies and in bytes), its workers, and what each job does: mirror,
    recheck, verify."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        sides: Sides,
        judge: Judge,
        windows: dict[str, GroupWindows],
        routes: RouteTable,
        writes: WriteVerification,
        metrics: GatewayMetrics,
        recorder: Recorder | None,
    ) -> None:
        self.config = config.shadow
        self.sides = sides
        self.judge = judge
        self.windows = windows  # the rollout's: native's failures on copies and every verdict feed the gate
        self.routes = routes
        self.writes = writes
        self.metrics = metrics
        self.recorder = recorder
        self.queue: asyncio.Queue[Job] = asyncio.Queue(maxsize=config.shadow.queue_size)
        self.queued_bytes = 0  # of the jobs waiting in the queue (`held_bytes`), bounded by queue_max_bytes
        self.inflight = 0
        self.rng = random.Random()

    def offer(self, job: Job, params: dict[str, str]) -> None:
        """Decide, without waiting, what happens off the hot path: a mirrored copy, a write
        verification, or nothing (counted with its reason)."""
        route = job.route
        is_write = job.request.method not in SAFE_METHODS
        if is_write and not self.config.mirror_writes:
            if not 200 <= job.primary.response.status < 300:  # nothing was written: nothing to verify
                self.metrics.mirror_skipped.labels(route, "method").inc()
                return
            job = replace(job, kind="verify")
        if not sampled(job.group, job.request, params, self.rng):
            self.metrics.mirror_skipped.labels(route, "sampled_out").inc()
            return
        limit = self.config.max_body_bytes
        if len(job.request.body) > limit or len(job.primary.response.body) > limit:
            self.metrics.mirror_skipped.labels(route, "body_too_large").inc()
            return
        size = held_bytes(job)
        if self.queued_bytes + size > self.config.queue_max_bytes:
            self.metrics.mirror_skipped.labels(route, "queue_full").inc()
            return
        try:
            self.queue.put_nowait(job)
        except asyncio.QueueFull:
            self.metrics.mirror_skipped.labels(route, "queue_full").inc()
            return
        self.queued_bytes += size
        self.metrics.mirror_queue.set(self.queue.qsize())

    async def worker(self) -> None:
        """One of `shadow.max_inflight` workers: so at most that many copies are in flight."""
        while True:
            job = await self.queue.get()
            self.queued_bytes -= held_bytes(job)
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

    async def drain(self, timeout_s: float) -> None:
        """Let the jobs already queued finish, for at most `timeout_s`."""
        try:
            await asyncio.wait_for(self.queue.join(), timeout_s)
        except TimeoutError:
            log.warning(
                "%d mirrored job(s) left unfinished at shutdown (%d in flight)",
                self.queue.qsize() + self.inflight,
                self.inflight,
            )

    def view(self) -> dict[str, int]:
        return {"queue": self.queue.qsize(), "inflight": self.inflight}

    async def _call(self, job: Job, side: str, request: Request) -> Answer:
        # A side answering a huge body costs at most the copy limit: over it, the copy is dropped.
        return await self.sides.call(
            side, request, job.route, job.stage, self.config.timeout_s, self.config.max_body_bytes
        )

    async def _mirror(self, job: Job) -> None:
        copy = replace(job.request, headers={**job.request.headers, "X-Shadow-Request": "1"})
        answer = await self._call(job, job.shadow_side, copy)
        if job.shadow_side == "native":
            self.windows[job.group.name].observe_native(answer.failed, job.stage)
        if self.recorder is not None:
            self.recorder.write(job.at, job.request_id, job.route, job.request)
        if answer.response.error is not None:
            self.metrics.mirror_skipped.labels(job.route, answer.drop_reason).inc()
            return
        if self.judge.stats is not None:  # both sides' latency on the same request, for the report
            self.judge.stats.add_latency(job.route, PLAN[job.stage][0], job.primary.elapsed_s)
            self.judge.stats.add_latency(job.route, job.shadow_side, answer.elapsed_s)
        pair = await self._recheck(job, job.request, job.primary.response, answer.response)
        await self.judge.settle(job, self.windows[job.group.name], job.request, pair)

    async def _recheck(
        self, job: Job, request: Request, primary: Response, shadow: Response
    ) -> tuple[Response, Response, Comparison]:
        """Compare, and confirm a mismatch on a read by asking both sides once more: the two
        first answers were taken at different moments, and a write in between (by any client)
        makes them differ without any parity bug. If the second pair agrees, it is the verdict;
        if it still differs, the mismatch is confirmed (`shadow_rechecks_total`)."""
        comparison = await self.judge.compare(primary, shadow, request)
        if comparison.result != "mismatch" or request.method not in SAFE_METHODS:
            return primary, shadow, comparison
        again = await self._both(job, request)
        if again[0].response.error is None and again[1].response.error is None:
            second = await self.judge.compare(again[0].response, again[1].response, request)
            if second.ok:
                self.metrics.rechecks.labels(job.route, "cleared").inc()
                return again[0].response, again[1].response, second
        self.metrics.rechecks.labels(job.route, "confirmed").inc()
        return primary, shadow, comparison

    async def _both(self, job: Job, request: Request) -> tuple[Answer, Answer]:
        """The same request to the primary side and the shadow side, at once."""
        first, second = await asyncio.gather(
            self._call(job, PLAN[job.stage][0], request), self._call(job, job.shadow_side, request)
        )
        return first, second

    async def _verify(self, job: Job) -> None:
        """Read back what a write touched, from both sides, and compare. A delete must leave
        the resource missing (404) on both."""
        deleted = job.request.method == "DELETE"
        query = parse_qsl(job.request.target.partition("?")[2], keep_blank_values=True)
        headers = {k: v for k, v in job.request.headers.items() if k.lower() not in ("content-type",)}
        headers["X-Shadow-Request"] = "1"
        params = self.routes.match(job.request.method, job.request.path).params
        written = self.writes.written_ids(job.request.method, params, job.request.body, job.primary.response.body)
        known = self.writes.dropped(job.request.method, params, job.request.body)
        if known is not None and written and PLAN[job.stage][0] == "legacy":
            # Legacy took the write and dropped what native keeps (a known difference): counted
            # as `expected` for the write itself; the read-backs below compare legacy's row.
            verdict = Comparison("expected", (), job.route, known=known, reason="legacy dropped what native keeps")
            primary = job.primary.response
            await self.judge.settle(job, self.windows[job.group.name], job.request, (primary, primary, verdict))
        for resource_id in written:
            for target in self.writes.reads(job.request.method, resource_id, query):
                read = Request("GET", target, headers, b"")
                first, second = await self._both(job, read)
                if first.response.error or second.response.error:
                    failed = second if second.response.error else first
                    self.metrics.mirror_skipped.labels(job.route, failed.drop_reason).inc()
                    continue
                left, right, comparison = await self._recheck(job, read, first.response, second.response)
                if deleted and comparison.ok and left.status != 404:
                    comparison = Comparison(
                        "mismatch",
                        (Difference(":status", "status", left.status, right.status),),
                        comparison.route,
                        reason="the deleted session can still be read",
                    )
                await self.judge.settle(job, self.windows[job.group.name], read, (left, right, comparison))
