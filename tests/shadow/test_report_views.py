"""The report's views on the real gateway (the real AgentOS as legacy, the native service
in-process, the store on the real Postgres): what the mirror records per cohort and per side,
`/shadow/report?cohort=`, `/shadow/report.json`, and `POST /shadow/mismatches/{id}/recheck`
with its refusals (no token, a bad or unknown id, a write, no legacy side)."""

from __future__ import annotations

import json
import re
import zlib

from shadow_proxy.config import Admin
from shadow_proxy.report import SECTIONS
from tests.shadow.conftest import GatewayFactory, gateway_config
from tests.shadow.faults import FaultyLegacy
from tests.shadow.test_admin import make_sample
from tests.shadow.test_gateway import at_stage, gw, settled

TOKEN = "views-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def test_cohorts_and_latency_come_from_the_mirrored_traffic(make_gateway: GatewayFactory, legacy_url: str):
    client = await make_gateway(at_stage(gateway_config(legacy_url), "shadow"))
    for _ in range(3):
        assert (await client.get("/sessions?type=team&user_id=report-user")).status == 200
    assert (await client.get("/sessions/s-agent-1")).status == 200
    await settled(client)
    await gw(client).rollout.flush()
    store = gw(client).store
    assert store is not None
    by_type = {(r["route"], r["value"]): r["n"] for r in await store.cohort_counts("type", 0)}
    assert by_type[("GET /sessions", "team")] == 3 and by_type[("GET /sessions/{session_id}", "agent")] == 1
    users = {r["value"] for r in await store.cohort_counts("user", 0) if r["route"] == "GET /sessions"}
    assert users == {str(zlib.crc32(b"report-user") % 16)}
    sizes = {r["value"] for r in await store.cohort_counts("size", 0)}
    assert sizes and all(re.fullmatch(r"\d+", v) and int(v) & (int(v) - 1) == 0 for v in sizes)  # powers of two
    latency = {(r["route"], r["side"]): 0 for r in await store.latency_counts(0)}
    assert set(latency) == {
        (route, side) for route in ("GET /sessions", "GET /sessions/{session_id}") for side in ("legacy", "native")
    }

    page = await (await client.get("/shadow/report?cohort=user")).text()
    assert "Parity by cohort: user" in page and str(zlib.crc32(b"report-user") % 16) in page
    latency_section = page[page.index('<section id="latency">') : page.index('<section id="parity">')]
    assert "legacy p50" in latency_section and latency_section.count("ms</td>") == 8  # 2 routes x 2 sides x p50/p99
    chart = page[page.index('<section id="chart">') : page.index('<section id="latency">')]
    assert "<circle" in chart and 'data-group="reads"' in chart  # the group's chart, and its routes'

    for bad in ("cohort=region", "refresh=-1", "refresh=soon"):
        answer = await client.get(f"/shadow/report?{bad}")
        assert answer.status == 400 and "detail" in await answer.json(), bad
    update = await (await client.get("/shadow/report.json?cohort=size")).json()
    assert set(update["sections"]) == set(SECTIONS) and "Parity by cohort: size" in update["sections"]["cohorts"]
    assert (await client.get("/shadow/report.json?cohort=x")).status == 400


async def test_recheck_asks_both_sides_now_and_refuses_what_it_must(make_gateway: GatewayFactory, legacy_url: str):
    async with FaultyLegacy(legacy_url) as legacy:
        legacy.mode = "mutate"
        client = await make_gateway(at_stage(gateway_config(legacy.url, admin=Admin(token=TOKEN)), "shadow"))
        assert (await client.get("/sessions/s-agent-1", headers={"Cookie": "sid=very-secret"})).status == 200
        await settled(client)
        store = gw(client).store
        assert store is not None
        [stored] = await store.mismatches()
        url = f"/shadow/mismatches/{stored['id']}/recheck"

        assert (await client.post(url)).status == 401  # a write to /shadow/: the admin token
        answer = await client.post(url, headers=AUTH)
        body = await answer.json()
        assert answer.status == 200, body
        assert (body["id"], body["stored_result"], body["result"]) == (stored["id"], "mismatch", "mismatch")
        assert body["primary"] == {"side": "legacy", "status": 200, "error": None}
        assert body["shadow"] == {"side": "native", "status": 200, "error": None}
        assert body["dropped_headers"] == ["Cookie"]  # stored redacted: its value is not kept, not sent
        assert "very-secret" not in json.dumps(body)
        received = len(legacy.received)
        legacy.mode = "pass"
        again = await (await client.post(url, headers=AUTH)).json()
        assert again["result"] == "match" and len(legacy.received) == received + 1  # asked once, now
        assert "very-secret" not in json.dumps(legacy.received[-1])
        # An operator's question is not evidence: the counts are the mirror's only.
        assert gw(client).tally.counts["GET /sessions/{session_id}"]["match"] == 0

        assert (await client.post("/shadow/mismatches/abc/recheck", headers=AUTH)).status == 422
        missing = await client.post(f"/shadow/mismatches/{stored['id'] + 1000}/recheck", headers=AUTH)
        assert missing.status == 404 and "detail" in await missing.json()
        write = make_sample("/sessions/s-agent-1", {"a": 1}, {"a": 2})
        write = type(write)(**{**write.__dict__, "request": type(write.request)("DELETE", "/sessions/s-agent-1")})
        await store.record(write)
        [newest, *_] = await store.mismatches()
        refused = await client.post(f"/shadow/mismatches/{newest['id']}/recheck", headers=AUTH)
        assert refused.status == 409 and "write" in (await refused.json())["detail"]


async def test_recheck_without_a_legacy_side_is_refused(make_gateway: GatewayFactory):
    client = await make_gateway(gateway_config(None, admin=Admin(token=TOKEN)))
    store = gw(client).store
    assert store is not None
    await store.record(make_sample("/sessions/s-agent-1", {"a": 1}, {"a": 2}))
    [stored] = await store.mismatches()
    refused = await client.post(f"/shadow/mismatches/{stored['id']}/recheck", headers=AUTH)
    assert refused.status == 409 and "no legacy side" in (await refused.json())["detail"]
