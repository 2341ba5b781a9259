"""The gateway on real parts: the native service in-process (or as its own process), the real
agno AgentOS as legacy (directly, or behind `faults.FaultyLegacy` to make it slow, broken or
diverging), and the embedded Postgres holding agno's tables and the gateway's own."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import re
import time
import uuid
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from comparator import Request
from session_service.appkeys import METRICS as NATIVE_METRICS
from shadow_proxy.appkeys import GATEWAY
from shadow_proxy.config import Admin, Gate, GatewayConfig, Group, Legacy, Native, Shadow
from shadow_proxy.gateway import Gateway
from shadow_proxy.mirroring import sampled
from tests.conftest import NativeProcess
from tests.legacy.fixtures import free_port
from tests.shadow.conftest import GatewayFactory, gateway_config
from tests.shadow.faults import FaultyLegacy

DETAIL = "/sessions/s-agent-1"
DETAIL_ROUTE = "GET /sessions/{session_id}"


def at_stage(config: GatewayConfig, stage: str, **group_changes: Any) -> GatewayConfig:
    return dataclasses.replace(
        config, groups=tuple(dataclasses.replace(g, stage=stage, **group_changes) for g in config.groups)
    )


def gw(client: TestClient) -> Gateway:
    return client.app[GATEWAY]


def metric(client: TestClient, name: str, **labels: str) -> float:
    return gw(client).metrics.registry.get_sample_value(name, labels) or 0.0


async def settled(client: TestClient) -> None:
    """Every mirrored copy and verification queued so far has been sent and compared."""
    await asyncio.wait_for(gw(client).queue.join(), 30)


async def direct(base: str, path: str) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as session, session.get(base + path) as r:
        return r.status, await r.read()


async def eventually(condition: Any, timeout_s: float = 15.0) -> None:
    for _ in range(int(timeout_s / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    assert condition(), "condition not reached in time"


# ---- stages ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "stage,answers,mirrored",
    [
        ("legacy", "legacy", None),
        ("shadow", "legacy", "native"),
        ("primary", "native", "legacy"),
        ("native", "native", None),
    ],
)
async def test_each_stage_answers_from_its_side_and_mirrors_to_the_other(
    make_gateway: GatewayFactory, legacy_url: str, stage: str, answers: str, mirrored: str | None
) -> None:
    client = await make_gateway(at_stage(gateway_config(legacy_url), stage))
    expected = await direct(legacy_url, DETAIL)
    r = await client.get(DETAIL)
    assert (r.status, await r.read()) == expected
    await settled(client)
    assert metric(client, "shadow_requests_total", route=DETAIL_ROUTE, stage=stage, side=answers, code_class="2xx") == 1
    other = "native" if answers == "legacy" else "legacy"
    assert metric(client, "shadow_requests_total", route=DETAIL_ROUTE, stage=stage, side=other, code_class="2xx") == (
        1 if mirrored else 0
    )
    assert metric(client, "shadow_comparisons_total", route=DETAIL_ROUTE, result="match") == (1 if mirrored else 0)
    assert metric(client, "shadow_stage", route=DETAIL_ROUTE, stage=stage) == 1


async def test_requests_outside_every_group_go_to_legacy_unmirrored(
    make_gateway: GatewayFactory, legacy_url: str
) -> None:
    client = await make_gateway(at_stage(gateway_config(legacy_url), "primary"))
    for path in ("/health", "/sessions/a/b/c"):
        expected = await direct(legacy_url, path)
        r = await client.get(path)
        assert (r.status, await r.read()) == expected
    await settled(client)
    assert gw(client).snapshot()["routes"] == {}


# ---- fallback -------------------------------------------------------------------------------


async def test_fallback_to_legacy_when_the_native_process_is_stopped(
    make_gateway: GatewayFactory, legacy_url: str, pg_dsn: str
) -> None:
    native = await asyncio.to_thread(
        NativeProcess, {"AGNO_PG_DSN": pg_dsn, "AGNO_DEFAULT_DB_ID": "main-db"}, "native-fallback"
    )
    try:
        config = at_stage(gateway_config(legacy_url, native=Native(url=native.url, timeout_s=5)), "primary")
        client = await make_gateway(config)
        expected = await direct(legacy_url, DETAIL)
        r = await client.get(DETAIL)
        assert (r.status, await r.read()) == expected
        assert (
            metric(client, "shadow_fallbacks_total", route=DETAIL_ROUTE, reason="connection_error", side="legacy") == 0
        )
        await asyncio.to_thread(native.stop)

        r = await client.get(DETAIL)
        assert (r.status, await r.read()) == expected  # the client sees nothing of it
        assert (
            metric(client, "shadow_fallbacks_total", route=DETAIL_ROUTE, reason="connection_error", side="legacy") == 1
        )
        # A write that provably never reached native (connection refused) is retried on legacy.
        session_id = f"gw-fallback-{uuid.uuid4().hex[:8]}"
        r = await client.post("/sessions", json={"session_id": session_id})
        assert r.status == 201, await r.text()
        assert (
            metric(client, "shadow_fallbacks_total", route="POST /sessions", reason="connection_error", side="legacy")
            == 1
        )
        assert (await direct(legacy_url, f"/sessions/{session_id}"))[0] == 200
    finally:
        await asyncio.to_thread(native.stop)


async def test_fallback_when_the_in_process_native_times_out(make_gateway: GatewayFactory, legacy_url: str) -> None:
    config = at_stage(gateway_config(legacy_url, native=Native(timeout_s=0.000001)), "native")
    client = await make_gateway(config)
    expected = await direct(legacy_url, DETAIL)
    r = await client.get(DETAIL)
    assert (r.status, await r.read()) == expected
    assert metric(client, "shadow_fallbacks_total", route=DETAIL_ROUTE, reason="timeout", side="legacy") == 1


async def test_a_write_that_may_have_reached_native_is_not_retried(
    make_gateway: GatewayFactory, legacy_url: str
) -> None:
    """A timed-out native write may have been applied: answering it from legacy could apply it twice."""
    config = at_stage(gateway_config(legacy_url, native=Native(timeout_s=0.000001)), "primary")
    client = await make_gateway(config)
    r = await client.post("/sessions", json={"session_id": f"gw-noretry-{uuid.uuid4().hex[:8]}"})
    assert r.status == 504
    assert (await r.json())["detail"].startswith("Gateway timeout")
    assert metric(client, "shadow_fallbacks_total", route="POST /sessions", reason="timeout", side="legacy") == 0


# ---- the shadow side never touches the client's answer ------------------------------------


async def test_legacy_down_slow_or_garbage_changes_no_primary_answer(
    make_gateway: GatewayFactory, legacy_url: str
) -> None:
    expected = await direct(legacy_url, DETAIL)

    down = await make_gateway(at_stage(gateway_config(f"http://127.0.0.1:{free_port()}"), "primary"))
    r = await down.get(DETAIL)
    assert (r.status, await r.read()) == expected
    await settled(down)
    assert metric(down, "shadow_mirror_skipped_total", route=DETAIL_ROUTE, reason="shadow_error") == 1

    async with FaultyLegacy(legacy_url) as legacy:
        # The shadow timeout is long (30 s) and the answer is timed: were the hot path to await
        # the mirrored copy, the client would wait for the held copy (until its release, or the
        # 30 s timeout), and the time bound below would fail.
        config = at_stage(gateway_config(legacy.url, shadow=Shadow(timeout_s=30.0)), "primary")
        client = await make_gateway(config)
        legacy.mode = "hold"
        started = time.perf_counter()
        r = await asyncio.wait_for(client.get(DETAIL), timeout=5.0)
        assert (r.status, await r.read()) == expected
        answered_in = time.perf_counter() - started
        assert answered_in < 1.0, f"the client waited {answered_in:.2f}s: the hot path awaited the shadow copy"
        # The answer came while the legacy copy is held: it reached legacy and is still unanswered.
        await eventually(lambda: legacy.held == 1)
        assert legacy.pending == 1
        assert metric(client, "shadow_mirror_inflight") == 1
        legacy.release.set()
        await settled(client)
        assert legacy.pending == 0
        assert metric(client, "shadow_comparisons_total", route=DETAIL_ROUTE, result="match") == 1

    async with FaultyLegacy(legacy_url) as legacy:
        # A copy held past the shadow timeout is dropped and counted as a timeout.
        client = await make_gateway(at_stage(gateway_config(legacy.url, shadow=Shadow(timeout_s=0.5)), "primary"))
        legacy.mode = "hold"
        r = await client.get(DETAIL)
        assert (r.status, await r.read()) == expected
        await eventually(
            lambda: metric(client, "shadow_mirror_skipped_total", route=DETAIL_ROUTE, reason="timeout") == 1
        )
        assert legacy.pending == 1  # still held by the fault proxy: the gateway gave up on it

        legacy.mode = "garbage"
        r = await client.get(DETAIL)
        assert (r.status, await r.read()) == expected
        await settled(client)
        assert metric(client, "shadow_comparisons_total", route=DETAIL_ROUTE, result="error") == 1


@pytest.mark.parametrize("bound", ["copies", "bytes"])
async def test_a_full_queue_drops_and_counts(make_gateway: GatewayFactory, legacy_url: str, bound: str) -> None:
    """Room for one queued copy, by count (`shadow.queue_size`) or by bytes
    (`shadow.queue_max_bytes`: a queued copy holds the primary's answer, so the bytes bound what
    a stalled legacy can make the gateway keep): what does not fit is dropped and counted, and
    the room is given back as copies leave the queue."""
    expected = await direct(legacy_url, DETAIL)
    one_copy = len(DETAIL) + len(expected[1])
    limits = {"copies": {"queue_size": 1}, "bytes": {"queue_size": 100, "queue_max_bytes": one_copy + one_copy // 2}}
    async with FaultyLegacy(legacy_url) as legacy:
        shadow = Shadow(**limits[bound], max_inflight=1, timeout_s=30)
        client = await make_gateway(at_stage(gateway_config(legacy.url, shadow=shadow), "primary"))
        legacy.mode = "hold"
        assert (await (await client.get(DETAIL)).read()) == expected[1]
        await eventually(lambda: legacy.held == 1)  # the only worker is busy with copy 1
        for _ in range(4):  # copy 2 waits in the queue; 3, 4 and 5 do not fit
            r = await client.get(DETAIL)
            assert (r.status, await r.read()) == expected
        assert metric(client, "shadow_mirror_skipped_total", route=DETAIL_ROUTE, reason="queue_full") == 3
        assert metric(client, "shadow_mirror_queue_depth") == 1
        assert metric(client, "shadow_mirror_inflight") == 1
        legacy.release.set()
        await settled(client)
        assert metric(client, "shadow_comparisons_total", route=DETAIL_ROUTE, result="match") == 2
        legacy.mode = "pass"  # the room is given back: the next copy is queued again
        await client.get(DETAIL)
        await settled(client)
        assert metric(client, "shadow_comparisons_total", route=DETAIL_ROUTE, result="match") == 3


async def test_sampling_and_size_limits_are_counted(make_gateway: GatewayFactory, legacy_url: str) -> None:
    client = await make_gateway(at_stage(gateway_config(legacy_url), "shadow", sample_rate=0.0))
    await client.get(DETAIL)
    assert metric(client, "shadow_mirror_skipped_total", route=DETAIL_ROUTE, reason="sampled_out") == 1
    small = await make_gateway(at_stage(gateway_config(legacy_url, shadow=Shadow(max_body_bytes=100)), "shadow"))
    await small.get(DETAIL)
    assert metric(small, "shadow_mirror_skipped_total", route=DETAIL_ROUTE, reason="body_too_large") == 1


def test_sticky_sampling_keeps_a_user_together() -> None:
    group = Group("reads", (DETAIL_ROUTE,), "shadow", 0.5, "user_id")
    rng = random.Random(1)
    decisions = {
        user: sampled(group, Request("GET", f"/sessions?user_id={user}"), {}, rng) for user in map(str, range(200))
    }
    for user, decision in decisions.items():  # the same user, another route, another time: the same decision
        assert sampled(group, Request("GET", f"/sessions/x/runs?user_id={user}"), {}, rng) == decision
    assert 60 < sum(decisions.values()) < 140


# ---- headers --------------------------------------------------------------------------------


async def test_headers_to_each_side(make_gateway: GatewayFactory, legacy_url: str) -> None:
    async with FaultyLegacy(legacy_url) as legacy:
        client = await make_gateway(at_stage(gateway_config(legacy.url), "shadow"))
        await client.get(
            DETAIL,
            headers={
                "Authorization": "Bearer token-1",
                "Connection": "keep-alive, X-Hop",
                "X-Hop": "1",
                "X-Forwarded-For": "203.0.113.9",
            },
        )
        primary = legacy.received[-1]
        assert primary["Authorization"] == "Bearer token-1"
        assert primary["X-Forwarded-For"] == "203.0.113.9, 127.0.0.1"
        assert primary["X-Forwarded-Proto"] == "http"
        assert "X-Hop" not in primary and "X-Shadow-Request" not in primary
        assert primary["Host"] == legacy.url.removeprefix("http://")

    async with FaultyLegacy(legacy_url) as legacy:
        # (reset: the stored stage of the first gateway would otherwise win over this config's)
        client = await make_gateway(at_stage(gateway_config(legacy.url), "primary"), reset=True)
        await client.get(DETAIL, headers={"Authorization": "Bearer token-2"})
        await settled(client)
        copy = legacy.received[-1]
        assert copy["X-Shadow-Request"] == "1"
        assert copy["Authorization"] == "Bearer token-2"
        assert copy["Host"] == legacy.url.removeprefix("http://")  # no `-shadow` suffix


# ---- writes ---------------------------------------------------------------------------------


def native_posts(client: TestClient) -> float:
    registry = gw(client).native.app[NATIVE_METRICS].registry  # type: ignore[union-attr]
    return sum(
        registry.get_sample_value(
            "agno_session_requests_total", {"route": "POST /sessions", "method": "POST", "status": s}
        )
        or 0
        for s in ("201", "409", "422")
    )


async def test_writes_are_applied_once_and_verified_on_both_sides(
    make_gateway: GatewayFactory, legacy_url: str
) -> None:
    client = await make_gateway(at_stage(gateway_config(legacy_url), "shadow"))
    session_id = f"gw-write-{uuid.uuid4().hex[:8]}"
    r = await client.post("/sessions", json={"session_id": session_id, "session_name": "once"})
    assert r.status == 201
    r = await client.post(f"/sessions/{session_id}/rename", json={"session_name": "renamed"})
    assert r.status == 200
    await settled(client)
    assert native_posts(client) == 0  # the write went to the primary (legacy) only
    assert metric(client, "shadow_comparisons_total", route="POST /sessions", result="match") == 2  # detail + runs
    assert metric(client, "shadow_comparisons_total", route="POST /sessions/{session_id}/rename", result="match") == 2
    r = await client.delete(f"/sessions/{session_id}")
    assert r.status == 204
    await settled(client)
    assert metric(client, "shadow_comparisons_total", route="DELETE /sessions/{session_id}", result="match") == 1
    assert metric(client, "shadow_mirror_skipped_total", route="POST /sessions", reason="method") == 0


async def test_write_verification_catches_a_write_native_stored_differently(
    make_gateway: GatewayFactory, legacy_url: str, second_pg_dsn: str, seeded_second: None
) -> None:
    """Native misconfigured onto another database: its writes succeed, and the read-back shows
    legacy cannot see them."""
    client = await make_gateway(at_stage(gateway_config(legacy_url), "primary"), native_dsn=second_pg_dsn)
    session_id = f"gw-elsewhere-{uuid.uuid4().hex[:8]}"
    r = await client.post("/sessions", json={"session_id": session_id})
    assert r.status == 201
    await settled(client)
    assert metric(client, "shadow_comparisons_total", route="POST /sessions", result="mismatch") == 2
    stored = await gw(client).store.mismatches(route="POST /sessions")  # type: ignore[union-attr]
    assert stored and stored[0]["origin"] == "verify"
    assert stored[0]["comparison"]["differences"][0]["kind"] == "status"


# ---- the parity gate ------------------------------------------------------------------------

FAST_GATE = Gate(
    enabled=True,
    window=50,
    min_samples=10,
    promote_max_mismatch_rate=0.5,
    min_rollback_samples=5,
    rollback_mismatch_rate=0.2,
    rollback_error_rate=0.5,
    interval_s=0.1,
)


async def test_gate_promotes_on_clean_traffic_and_every_replica_follows(
    make_gateway: GatewayFactory, legacy_url: str
) -> None:
    config = at_stage(gateway_config(legacy_url, gate=FAST_GATE), "shadow")
    first = await make_gateway(config)
    second = await make_gateway(dataclasses.replace(config, gate=Gate(enabled=False)))
    for _ in range(12):
        assert (await first.get(DETAIL)).status == 200
    await settled(first)
    await eventually(lambda: gw(first).stages["reads"].to_stage == "primary")
    await eventually(lambda: gw(second).stages["reads"].to_stage == "primary")
    assert gw(second).stages["reads"].by == "gate"
    assert gw(first).stages["writes"].to_stage == "shadow"  # no traffic, no promotion
    decisions = await gw(first).store.decisions("reads")  # type: ignore[union-attr]
    assert decisions[0].to_stage == "primary" and "pairs agree" in decisions[0].reason
    assert (
        metric(first, "shadow_stage_decisions_total", group="reads", from_stage="shadow", to_stage="primary", by="gate")
        == 1
    )
    assert metric(second, "shadow_stage", route=DETAIL_ROUTE, stage="primary") == 1


async def test_gate_rolls_back_on_injected_mismatches(make_gateway: GatewayFactory, legacy_url: str) -> None:
    async with FaultyLegacy(legacy_url) as legacy:
        legacy.mode = "mutate"  # every legacy copy now disagrees on session_name
        client = await make_gateway(at_stage(gateway_config(legacy.url, gate=FAST_GATE), "primary"))
        for _ in range(6):
            assert (await client.get(DETAIL)).status == 200
        await settled(client)
        await eventually(lambda: gw(client).stages["reads"].to_stage == "shadow")
        assert "mismatch rate" in gw(client).stages["reads"].reason
        r = await client.get("/shadow/mismatches", params={"route": DETAIL_ROUTE, "path": "session_name"})
        body = await r.json()
        assert body["count"] >= 5
        assert metric(client, "shadow_mismatch_paths_total", route=DETAIL_ROUTE, path="session_name") >= 5
        assert metric(client, "shadow_rechecks_total", route=DETAIL_ROUTE, outcome="confirmed") >= 5


# ---- admin and metrics ----------------------------------------------------------------------


async def test_stage_by_hand_needs_the_admin_token(make_gateway: GatewayFactory, legacy_url: str) -> None:
    closed = await make_gateway(gateway_config(legacy_url))
    r = await closed.post("/shadow/stage", json={"group": "reads", "stage": "primary"})
    assert r.status == 403
    config = gateway_config(legacy_url, admin=Admin(token="s3cret"))
    first, second = await make_gateway(config), await make_gateway(config)
    for headers, status in (
        ({}, 401),
        ({"Authorization": "Bearer nope"}, 401),
        ({"Authorization": "Bearer s3cret"}, 200),
    ):
        r = await first.post(
            "/shadow/stage", json={"group": "reads", "stage": "primary", "reason": "canary"}, headers=headers
        )
        assert r.status == status, await r.text()
    assert (
        await first.post(
            "/shadow/stage", json={"group": "nope", "stage": "primary"}, headers={"Authorization": "Bearer s3cret"}
        )
    ).status == 422
    await eventually(lambda: gw(second).stages["reads"].to_stage == "primary")
    assert gw(second).stages["reads"].reason == "canary"
    listing = await (await second.get("/shadow/stage")).json()
    assert listing["groups"]["reads"]["stage"] == "primary"
    assert listing["decisions"][0]["by"] == "admin"


async def test_metrics_carry_bounded_labels(make_gateway: GatewayFactory, legacy_url: str) -> None:
    client = await make_gateway(at_stage(gateway_config(legacy_url), "shadow"))
    for path in (DETAIL, "/sessions/s-team-1", "/sessions?page=0"):
        await client.get(path)
    await settled(client)
    text = await (await client.get("/metrics")).text()
    expected = {
        "shadow_requests_total": {"route", "stage", "side", "code_class"},
        "shadow_comparisons_total": {"route", "result"},
        "shadow_upstream_duration_seconds_bucket": {"route", "side", "le"},
        "shadow_stage": {"route", "stage"},
        "shadow_parity_ratio": {"route"},
        "shadow_mirror_inflight": set(),
    }
    for name, labels in expected.items():
        lines = [line for line in text.splitlines() if line.startswith(name + "{") or line.startswith(name + " ")]
        assert lines, name
        for line in lines:
            assert set(re.findall(r'[{,](\w+)="', line)) == labels, line
    assert 'route="GET /sessions/{session_id}"' in text and "s-agent-1" not in text  # templates, never raw paths
    assert metric(client, "shadow_comparisons_total", route="GET /sessions", result="expected") == 1  # page=0
    assert "agno_session_requests_total" in text  # the in-process native service's metrics too


async def test_config_file_documents_the_defaults() -> None:
    """config/gateway.yaml shows every key with its default: loading it changes nothing but paths."""
    from shadow_proxy.config import load_config

    shipped = load_config("config/gateway.yaml", env={"AGNO_LEGACY_URL": "http://legacy"})
    assert dataclasses.replace(shipped, rules=None) == GatewayConfig(legacy=Legacy(url="http://legacy"))
    assert shipped.rules and shipped.rules.endswith("config/comparator.yaml")


async def test_sampled_requests_are_recorded_for_replay(
    make_gateway: GatewayFactory, legacy_url: str, tmp_path: Any
) -> None:
    record = tmp_path / "sampled.jsonl"
    client = await make_gateway(at_stage(gateway_config(legacy_url, shadow=Shadow(record=str(record))), "shadow"))
    await client.get(DETAIL, headers={"Authorization": "Bearer secret"})
    await settled(client)
    (line,) = record.read_text().splitlines()
    entry = json.loads(line)
    assert entry["route"] == DETAIL_ROUTE and entry["request"]["target"] == DETAIL
    assert entry["request"]["headers"]["Authorization"] == "<redacted>"


async def test_legacy_errors_reach_the_client_as_legacy_gave_them(
    make_gateway: GatewayFactory, legacy_url: str
) -> None:
    """At stage shadow legacy's answer is the answer, a 500 included (page=0, a known
    difference); and the connection uvicorn closes after it never fails the next request."""
    client = await make_gateway(at_stage(gateway_config(legacy_url), "shadow"))
    expected = await direct(legacy_url, "/sessions?page=0")
    for _ in range(3):
        r = await client.get("/sessions?page=0")
        assert (r.status, await r.read()) == expected
        r = await client.post("/sessions", json={"session_id": f"gw-after-500-{uuid.uuid4().hex[:8]}"})
        assert r.status == 201, await r.text()
    await settled(client)
    assert metric(client, "shadow_comparisons_total", route="GET /sessions", result="expected") == 3

    down = await make_gateway(at_stage(gateway_config(f"http://127.0.0.1:{free_port()}"), "shadow"))
    r = await down.get(DETAIL)
    assert r.status == 502 and "legacy did not answer" in (await r.json())["detail"]
    assert metric(down, "shadow_mirror_skipped_total", route=DETAIL_ROUTE, reason="primary_error") == 1


async def test_admin_reads_can_be_protected(make_gateway: GatewayFactory, legacy_url: str) -> None:
    client = await make_gateway(gateway_config(legacy_url, admin=Admin(token="s3cret", protect_reads=True)))
    for path in ("/shadow/report", "/shadow/mismatches", "/shadow/stage"):
        assert (await client.get(path)).status == 401
        assert (await client.get(path, headers={"Authorization": "Bearer s3cret"})).status == 200
    assert (await client.get(DETAIL)).status == 200  # proxied paths are not the gateway's to guard


def test_mismatch_path_labels_are_capped_per_route() -> None:
    """User-chosen keys (session_state, metadata) must not grow the metric's labels without end."""
    from shadow_proxy.mirroring import MAX_PATH_LABELS, OTHER_PATHS, bounded_label

    seen: set[str] = set()
    labels = [bounded_label(seen, f"session_state.k{i}") for i in range(MAX_PATH_LABELS + 5)]
    assert labels[:MAX_PATH_LABELS] == [f"session_state.k{i}" for i in range(MAX_PATH_LABELS)]
    assert labels[MAX_PATH_LABELS:] == [OTHER_PATHS] * 5
    assert bounded_label(seen, "session_state.k3") == "session_state.k3"  # a known one keeps its label


async def test_a_write_between_the_two_answers_is_not_a_mismatch(make_gateway: GatewayFactory, legacy_url: str) -> None:
    """Native answers, the copy to legacy is held, another client renames the session, then the
    copy goes on: the answers differ only because the data moved. Asked again, both agree."""
    session_id = f"gw-race-{uuid.uuid4().hex[:8]}"
    async with aiohttp.ClientSession() as direct_client, FaultyLegacy(legacy_url) as legacy:
        await direct_client.post(f"{legacy_url}/sessions", json={"session_id": session_id, "session_name": "before"})
        client = await make_gateway(at_stage(gateway_config(legacy.url), "primary"))
        legacy.mode = "hold"
        r = await client.get(f"/sessions/{session_id}")
        assert (await r.json())["session_name"] == "before"
        await eventually(lambda: legacy.held == 1)
        await direct_client.post(f"{legacy_url}/sessions/{session_id}/rename", json={"session_name": "after"})
        legacy.mode = "pass"
        legacy.release.set()
        await settled(client)
    route = "GET /sessions/{session_id}"
    assert metric(client, "shadow_rechecks_total", route=route, outcome="cleared") == 1
    assert metric(client, "shadow_comparisons_total", route=route, result="match") == 1
    assert metric(client, "shadow_comparisons_total", route=route, result="mismatch") == 0


async def test_a_noise_model_sets_known_noise_aside(
    make_gateway: GatewayFactory, legacy_url: str, tmp_path: Any
) -> None:
    """A path the noise model saw differ between two answers of the same side in every pair is
    not a regression when it differs in the real pairs at the same rate."""
    from comparator import Comparison, Difference
    from comparator.noise import NoiseModel, Thresholds

    model = NoiseModel(Thresholds(min_samples=5))
    for _ in range(10):
        model.observe_noise(Comparison("mismatch", (Difference("session_name", "value", "a", "b"),), DETAIL_ROUTE))
    model.save(tmp_path / "noise.yaml")
    async with FaultyLegacy(legacy_url) as legacy:
        legacy.mode = "mutate"  # session_name differs on every copy
        config = gateway_config(legacy.url, noise_model=str(tmp_path / "noise.yaml"))
        client = await make_gateway(at_stage(config, "primary"))
        for _ in range(3):
            assert (await client.get(DETAIL)).status == 200
        await settled(client)
    assert metric(client, "shadow_comparisons_total", route=DETAIL_ROUTE, result="match") == 3
    assert metric(client, "shadow_comparisons_total", route=DETAIL_ROUTE, result="mismatch") == 0
    assert await gw(client).store.mismatches() == []  # type: ignore[union-attr]


async def test_mirror_writes_for_a_shadow_with_its_own_database(
    make_gateway: GatewayFactory, legacy_url: str, second_pg_dsn: str, seeded_second: None
) -> None:
    """`mirror_writes: true`: the write itself is mirrored (no read-back) and applied on the
    shadow's own database."""
    config = at_stage(gateway_config(legacy_url, shadow=Shadow(mirror_writes=True)), "shadow")
    client = await make_gateway(config, native_dsn=second_pg_dsn)
    session_id = f"gw-mirrored-{uuid.uuid4().hex[:8]}"
    assert (await client.post("/sessions", json={"session_id": session_id, "session_name": "both"})).status == 201
    await settled(client)
    results = {
        r: metric(client, "shadow_comparisons_total", route="POST /sessions", result=r) for r in ("match", "mismatch")
    }
    assert sum(results.values()) == 1  # one comparison: the two 201 answers
    if results["mismatch"]:  # only the write clock may differ (the two writes may straddle a second)
        [stored] = await gw(client).store.mismatches(route="POST /sessions")  # type: ignore[union-attr]
        assert {d["template"] for d in stored["comparison"]["differences"]} <= {"created_at", "updated_at"}
    conn = await asyncpg.connect(second_pg_dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM ai.agno_sessions WHERE session_id = $1", session_id) == 1
    finally:
        await conn.close()
