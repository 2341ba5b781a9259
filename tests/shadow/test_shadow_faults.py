"""The shadow side failing in every way a side fails, at stage `shadow` (native is the shadow)
and at stage `primary` (legacy is the shadow): down (a dead port), stalled past its timeout,
resetting connections, answering garbage, answering a huge body. The client never sees it:
every answer is the primary's own answer, each one timed, and every mirrored copy ends either
as a comparison or as a counted drop (`shadow_mirror_skipped_total{reason}`).

The faulty side is `faults.FaultyLegacy` in front of a real side: the real agno AgentOS, or the
native service as its own process (`native_url`), reached by the gateway over HTTP.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiohttp.test_utils import TestClient

from comparator import Request
from shadow_proxy.config import Legacy, Native, Shadow
from shadow_proxy.sides import HttpSide
from tests.legacy.fixtures import free_port
from tests.shadow.conftest import GatewayFactory, gateway_config
from tests.shadow.faults import FaultyLegacy
from tests.shadow.test_gateway import at_stage, direct, eventually, metric, settled

# Reads of two routes: a session, and a page of sessions.
TARGETS = {"/sessions/s-agent-1": "GET /sessions/{session_id}", "/sessions?type=agent": "GET /sessions"}
REQUESTS = 24  # per test: 12 of each target
FORWARDED = {"X-Forwarded-For": "127.0.0.1"}  # as the gateway sends it: the fault proxy faults only that
ANSWER_BOUND_S = 1.0  # the promise: the client never waits for the shadow
SKIP_REASONS = ("timeout", "shadow_error", "queue_full", "body_too_large", "sampled_out", "fallback", "primary_error")
RESULTS = ("match", "mismatch", "expected", "error")


def copies_accounted(client: TestClient) -> tuple[dict[str, float], dict[str, float]]:
    """Every copy's end, summed over the routes: (drops by reason, comparisons by result)."""
    drops = {
        reason: sum(metric(client, "shadow_mirror_skipped_total", route=t, reason=reason) for t in TARGETS.values())
        for reason in SKIP_REASONS
    }
    results = {
        result: sum(metric(client, "shadow_comparisons_total", route=t, result=result) for t in TARGETS.values())
        for result in RESULTS
    }
    return {k: v for k, v in drops.items() if v}, {k: v for k, v in results.items() if v}


@asynccontextmanager
async def faulty_gateway(
    make_gateway: GatewayFactory, stage: str, fault: str, legacy_url: str, native_url: str, shadow: Shadow
) -> AsyncIterator[tuple[TestClient, FaultyLegacy | None, str]]:
    """A gateway at `stage` whose shadow side has `fault`; with the faulty proxy (None when the
    side is a dead port) and the primary side's own URL (what the client must be answered)."""
    shadow_upstream, primary_url = (native_url, legacy_url) if stage == "shadow" else (legacy_url, native_url)
    async with FaultyLegacy(shadow_upstream) as faulty:
        shadow_url = f"http://127.0.0.1:{free_port()}" if fault == "down" else faulty.url
        faulty.mode = {"down": "pass", "stall": "hold"}.get(fault, fault)
        faulty.huge_bytes = 4 * 1024 * 1024
        if stage == "shadow":
            config = gateway_config(legacy_url, native=Native(url=shadow_url, timeout_s=5.0), shadow=shadow)
        else:
            config = gateway_config(shadow_url, legacy=Legacy(url=shadow_url, timeout_s=5.0), shadow=shadow)
        client = await make_gateway(at_stage(config, stage))
        yield client, (None if fault == "down" else faulty), primary_url


async def timed_get(client: TestClient, target: str) -> tuple[int, bytes, float]:
    started = time.perf_counter()
    r = await asyncio.wait_for(client.get(target), timeout=10.0)
    body = await r.read()
    return r.status, body, time.perf_counter() - started


@pytest.mark.parametrize("stage", ["shadow", "primary"])
@pytest.mark.parametrize(
    "fault,ends",
    [
        ("down", {"shadow_error"}),
        ("reset", {"shadow_error"}),
        ("garbage", {"error"}),
        ("huge", {"body_too_large"}),  # 4 MB over the 1 MB copy limit: not read, counted
    ],
)
async def test_a_failing_shadow_side_changes_no_answer_and_every_copy_is_counted(
    make_gateway: GatewayFactory, legacy_url: str, native_url: str, stage: str, fault: str, ends: set[str]
) -> None:
    expected = {t: await direct(legacy_url if stage == "shadow" else native_url, t) for t in TARGETS}
    shadow = Shadow(timeout_s=2.0)  # the shipped copy limit (shadow.max_body_bytes, 1 MB)
    async with faulty_gateway(make_gateway, stage, fault, legacy_url, native_url, shadow) as (client, faulty, _):
        slowest = 0.0
        for i in range(REQUESTS):
            target = list(TARGETS)[i % len(TARGETS)]
            status, body, took = await timed_get(client, target)
            assert (status, body) == expected[target], f"request {i}: the client saw the shadow's fault"
            slowest = max(slowest, took)
        assert slowest < ANSWER_BOUND_S, f"slowest answer {slowest:.2f}s"
        await settled(client)
        drops, results = copies_accounted(client)
        assert sum(drops.values()) + sum(results.values()) == REQUESTS, (drops, results)
        assert set(drops) | set(results) == ends, (drops, results)
        if faulty is not None:
            assert len([h for h in faulty.received if h.get("X-Shadow-Request")]) >= REQUESTS


@pytest.mark.parametrize("stage", ["shadow", "primary"])
async def test_a_stalled_shadow_is_never_waited_for_and_its_copies_are_counted(
    make_gateway: GatewayFactory, legacy_url: str, native_url: str, stage: str
) -> None:
    """The shadow holds every copy for 30 s with a 30 s shadow timeout: each client answer is
    timed under 1 s, the bounded queue fills and its drops are counted, and once the hold ends
    the copies in flight and queued are compared."""
    expected = {t: await direct(legacy_url if stage == "shadow" else native_url, t) for t in TARGETS}
    shadow = Shadow(timeout_s=30.0, queue_size=4, max_inflight=2)
    async with faulty_gateway(make_gateway, stage, "stall", legacy_url, native_url, shadow) as (client, faulty, _):
        assert faulty is not None
        held_for = 30.0
        release_at = time.perf_counter() + held_for
        answers: list[float] = []
        # Requests for the whole 30 s hold, one every 0.25 s.
        while time.perf_counter() < release_at - 0.5:
            target = list(TARGETS)[len(answers) % len(TARGETS)]
            status, body, took = await timed_get(client, target)
            assert (status, body) == expected[target]
            answers.append(took)
            await asyncio.sleep(0.25)
        assert faulty.pending == 2, "both workers' copies are held by the shadow"
        assert max(answers) < ANSWER_BOUND_S, f"slowest of {len(answers)} answers: {max(answers):.2f}s"
        await asyncio.sleep(max(0.0, release_at - time.perf_counter()))
        faulty.release.set()
        await settled(client)
        drops, results = copies_accounted(client)
        assert sum(drops.values()) + sum(results.values()) == len(answers), (drops, results)
        assert drops.get("queue_full", 0) == len(answers) - 6  # 2 in flight, 4 queued, the rest dropped
        assert set(results) <= {"match", "expected"} and sum(results.values()) == 6, results


async def test_a_copy_stalled_past_the_shadow_timeout_is_counted_as_a_timeout(
    make_gateway: GatewayFactory, legacy_url: str, native_url: str
) -> None:
    shadow = Shadow(timeout_s=0.5)
    async with faulty_gateway(make_gateway, "primary", "stall", legacy_url, native_url, shadow) as (client, faulty, _):
        for target in TARGETS:
            _, _, took = await timed_get(client, target)
            assert took < ANSWER_BOUND_S
        await eventually(lambda: copies_accounted(client)[0].get("timeout") == len(TARGETS))
        await settled(client)
        assert copies_accounted(client) == ({"timeout": len(TARGETS)}, {})
        assert faulty is not None and faulty.pending == len(TARGETS)  # the gateway gave up; the side still holds them


@pytest.mark.parametrize("chunked", [False, True])
async def test_a_huge_answer_is_not_read_past_the_limit(legacy_url: str, chunked: bool) -> None:
    """With a Content-Length over the limit nothing is read; without one, at most limit + 1 bytes."""
    async with FaultyLegacy(legacy_url) as faulty:
        faulty.mode, faulty.huge_bytes, faulty.huge_chunked = "huge", 4 * 1024 * 1024, chunked
        side = HttpSide("legacy", faulty.url, 4)
        await side.start()
        try:
            answer = await side.send(Request("GET", "/sessions/s-agent-1", FORWARDED), 10.0, max_body_bytes=1024 * 1024)
            assert answer.too_large and answer.drop_reason == "body_too_large" and answer.response.error
            whole = await side.send(
                Request("GET", "/sessions/s-agent-1", FORWARDED), 10.0, max_body_bytes=4 * 1024 * 1024
            )
            assert whole.response.error is None and len(whole.response.body) == 4 * 1024 * 1024
            faulty.mode = "pass"
            small = await side.send(Request("GET", "/sessions/s-agent-1", FORWARDED), 10.0, max_body_bytes=1024 * 1024)
            assert small.response.status == 200 and not small.too_large
        finally:
            await side.close()
