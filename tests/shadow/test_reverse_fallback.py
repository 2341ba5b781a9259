"""The opt-in reverse fallback (`groups.<name>.fallback_to_native`) at stage `shadow`: legacy,
the primary there, is down (nothing listening, a reset, a timeout, a 503 from a fault proxy in
front of the real AgentOS). Off (the default): the client gets the gateway's 502/504, as before.
On: a read is answered by native, byte-identical to the native service asked directly, counted
as `shadow_fallbacks_total{side="native"}` and logged; a write only when it provably never
reached legacy and the sides share one database."""

from __future__ import annotations

import dataclasses
import logging
import uuid

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from shadow_proxy.config import GatewayConfig, Legacy, Shadow
from tests.legacy.fixtures import free_port
from tests.shadow.conftest import GatewayFactory, gateway_config
from tests.shadow.faults import FaultyLegacy
from tests.shadow.test_gateway import DETAIL, DETAIL_ROUTE, at_stage, direct, metric, settled


def reverse(config: GatewayConfig, on: bool = True) -> GatewayConfig:
    return at_stage(config, "shadow", fallback_to_native=on)


def fallbacks(client: TestClient, route: str, reason: str, side: str = "native") -> float:
    return metric(client, "shadow_fallbacks_total", route=route, reason=reason, side=side)


def access_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    return [r.fields for r in caplog.records if r.name == "shadow_proxy.access"]  # type: ignore[attr-defined]  # set by `access()`


async def test_off_by_default_a_dead_legacy_is_a_502(make_gateway: GatewayFactory) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    config = at_stage(gateway_config(dead), "shadow")
    assert not any(g.fallback_to_native for g in config.groups)  # the shipped gateway.yaml's groups
    client = await make_gateway(config)
    r = await client.get(DETAIL)
    assert r.status == 502
    assert (await r.json())["detail"].startswith("Bad gateway: legacy did not answer")
    assert fallbacks(client, DETAIL_ROUTE, "connection_error") == 0
    # Legacy answers the clients of every group: the gateway is not ready without it.
    r = await client.get("/readyz")
    assert r.status == 503 and "legacy" in (await r.json())["not_ready"]


async def test_on_a_dead_legacy_is_answered_by_native(
    make_gateway: GatewayFactory, native_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    dead = f"http://127.0.0.1:{free_port()}"
    client = await make_gateway(reverse(gateway_config(dead)))
    for target in (DETAIL, "/sessions?type=agent&limit=3", f"{DETAIL}/runs"):
        expected = await direct(native_url, target)
        r = await client.get(target)
        assert (r.status, await r.read()) == expected, target
    assert fallbacks(client, DETAIL_ROUTE, "connection_error") == 1
    assert fallbacks(client, "GET /sessions", "connection_error") == 1
    assert fallbacks(client, DETAIL_ROUTE, "connection_error", side="legacy") == 0
    await settled(client)
    # Native answered: there is nothing to compare its answer with.
    assert metric(client, "shadow_mirror_skipped_total", route=DETAIL_ROUTE, reason="fallback") == 1
    assert metric(client, "shadow_comparisons_total", route=DETAIL_ROUTE, result="match") == 0
    line = access_lines(caplog)[0]
    assert (line["stage"], line["side"], line["fallback"], line["status"]) == (
        "shadow",
        "native",
        "connection_error",
        200,
    )
    r = await client.get(DETAIL)  # again: counted and in the access log, but warned of once
    assert r.status == 200
    assert fallbacks(client, DETAIL_ROUTE, "connection_error") == 2
    warnings = [r.getMessage() for r in caplog.records if "answered by native (fallback_to_native" in r.getMessage()]
    assert len(warnings) == 3 and sum(w.startswith(f"legacy failed a {DETAIL_ROUTE} (") for w in warnings) == 1
    assert [line["side"] for line in access_lines(caplog)] == ["native"] * 4
    # Native answers for every group at shadow: a legacy that is away keeps the gateway ready.
    r = await client.get("/readyz")
    body = await r.json()
    assert r.status == 200 and body["legacy_required"] is False and body["checks"]["legacy"] != "ok"


async def test_a_write_that_never_reached_legacy_goes_to_native_once(
    make_gateway: GatewayFactory, native_url: str
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    client = await make_gateway(reverse(gateway_config(dead)))
    session_id = f"reverse-{uuid.uuid4().hex[:8]}"
    try:
        r = await client.post("/sessions", json={"session_id": session_id})
        assert r.status == 201, await r.text()
        assert fallbacks(client, "POST /sessions", "connection_error") == 1
        assert (await direct(native_url, f"/sessions/{session_id}"))[0] == 200  # applied, in the shared database
    finally:
        async with aiohttp.ClientSession() as s, s.delete(f"{native_url}/sessions/{session_id}") as r:
            assert r.status in (204, 404)

    # With writes mirrored (each side its own database) native applying it alone would leave
    # legacy without it: the write is not sent.
    config = reverse(gateway_config(dead, shadow=Shadow(timeout_s=5.0, mirror_writes=True)))
    client = await make_gateway(config)
    r = await client.post("/sessions", json={"session_id": f"reverse-{uuid.uuid4().hex[:8]}"})
    assert r.status == 502
    assert fallbacks(client, "POST /sessions", "connection_error") == 0
    assert (
        metric(client, "shadow_requests_total", route="POST /sessions", stage="shadow", side="native", code_class="2xx")
        == 0
    )


async def test_a_timeout_or_503_falls_back_for_reads_only_and_a_500_is_legacys(
    make_gateway: GatewayFactory, legacy_url: str, native_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    expected = await direct(native_url, DETAIL)
    async with FaultyLegacy(legacy_url) as legacy:
        config = reverse(gateway_config(legacy.url, legacy=Legacy(url=legacy.url, timeout_s=2.0)))
        client = await make_gateway(config)

        legacy.mode = "hold"  # stalled past legacy.timeout_s (2 s: an unloaded AgentOS answers in ms)
        r = await client.get(DETAIL)
        assert (r.status, await r.read()) == expected
        assert fallbacks(client, DETAIL_ROUTE, "timeout") == 1
        # A write that timed out may have been applied by legacy: never sent to native too. (A
        # delete of a session that does not exist: the held copy changes nothing if it arrives.)
        r = await client.delete(f"/sessions/reverse-held-{uuid.uuid4().hex[:8]}")
        assert r.status == 504
        assert fallbacks(client, "DELETE /sessions/{session_id}", "timeout") == 0
        route = "DELETE /sessions/{session_id}"
        assert (
            metric(client, "shadow_requests_total", route=route, stage="shadow", side="native", code_class="4xx") == 0
        )

        legacy.mode = "status"  # a balancer's 503: legacy unavailable
        r = await client.get(DETAIL)
        assert (r.status, await r.read()) == expected
        assert fallbacks(client, DETAIL_ROUTE, "5xx") == 1
        r = await client.delete(f"/sessions/reverse-none-{uuid.uuid4().hex[:8]}")
        assert r.status == 503  # the write reached something that answered: legacy's answer stands
        assert fallbacks(client, "DELETE /sessions/{session_id}", "5xx") == 0

        legacy.status = 500  # an application error is legacy's answer, passed on
        r = await client.get(DETAIL)
        assert r.status == 500 and (await r.json())["detail"] == "unavailable (fault)"
        assert fallbacks(client, DETAIL_ROUTE, "5xx") == 1  # unchanged

        await settled(client)  # (the 500's copy, compared and asked again, before legacy is back)
        legacy.mode = "pass"  # legacy back: legacy answers, native gets the copy
        before = metric(client, "shadow_comparisons_total", route=DETAIL_ROUTE, result="match")
        r = await client.get(DETAIL)
        assert (r.status, await r.read()) == await direct(legacy_url, DETAIL)
        await settled(client)
        assert metric(client, "shadow_comparisons_total", route=DETAIL_ROUTE, result="match") == before + 1
        assert fallbacks(client, DETAIL_ROUTE, "timeout") + fallbacks(client, DETAIL_ROUTE, "5xx") == 2
        # Legacy answered again (its 500 was an answer): said once.
        assert sum(f"legacy answers {DETAIL_ROUTE} again" in r.getMessage() for r in caplog.records) == 1
        legacy.release.set()


async def test_only_at_stage_shadow_and_only_for_the_group_that_opts_in(make_gateway: GatewayFactory) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    base = gateway_config(dead)
    reads, writes = base.groups
    config = dataclasses.replace(
        base,
        groups=(
            dataclasses.replace(reads, stage="legacy", fallback_to_native=True),  # legacy alone answers at `legacy`
            dataclasses.replace(writes, stage="shadow", fallback_to_native=False),
        ),
    )
    client = await make_gateway(config)
    r = await client.get(DETAIL)
    assert r.status == 502
    r = await client.post("/sessions", json={"session_id": f"reverse-off-{uuid.uuid4().hex[:8]}"})
    assert r.status == 502
    assert sum(fallbacks(client, route, "connection_error") for route in ("POST /sessions", DETAIL_ROUTE)) == 0
    r = await client.get("/readyz")
    assert r.status == 503 and (await r.json())["legacy_required"] is True
