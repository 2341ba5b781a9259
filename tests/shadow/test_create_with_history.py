"""A create with history (`runs`, `summary`: issue 14) through a real gateway, both sides on one
database: at stage shadow legacy takes the write and drops the history, which the gateway counts
as the known difference (`expected`), not a mismatch; at stage primary native keeps it and the
read-back through agno's own reader matches native's byte for byte."""

from __future__ import annotations

import uuid

import aiohttp
import pytest

from agentos_session.sessions_api import SESSION_WRITES, SESSIONS
from tests.shadow.conftest import GatewayFactory, gateway_config
from tests.shadow.test_gateway import at_stage, metric, settled

ROUTE = "POST /sessions"


def history_body(session_id: str) -> dict[str, object]:
    run = {"run_id": f"{session_id}-r1", "agent_id": "basic-agent", "run_input": "Imported hello", "content": "Hi"}
    return {"session_id": session_id, "agent_id": "basic-agent", "runs": [run], "summary": {"summary": "Said hi"}}


def test_the_write_verification_knows_which_creates_legacy_drops() -> None:
    params = SESSIONS.match("POST", "/sessions").params
    assert SESSION_WRITES.dropped("POST", params, b'{"runs": []}') == "create-with-runs"
    assert SESSION_WRITES.dropped("POST", params, b'{"summary": {"summary": "s"}}') == "create-with-summary"
    assert SESSION_WRITES.dropped("POST", params, b'{"session_name": "x"}') is None
    assert SESSION_WRITES.dropped("POST", params, b'{"runs": null}') is None
    assert SESSION_WRITES.dropped("POST", params, b"{broken") is None
    rename = SESSIONS.match("POST", "/sessions/s/rename").params
    assert SESSION_WRITES.dropped("POST", rename, b'{"runs": []}') is None


@pytest.mark.parametrize("stage", ["shadow", "primary"])
async def test_create_with_history_is_expected_not_mismatch(
    stage: str, make_gateway: GatewayFactory, legacy_url: str
) -> None:
    client = await make_gateway(at_stage(gateway_config(legacy_url), stage), reset=True)
    session_id = f"gw-hist-{stage}-{uuid.uuid4().hex[:8]}"
    r = await client.post("/sessions", json=history_body(session_id))
    assert r.status == 201
    answer = await r.text()
    await settled(client)
    assert metric(client, "shadow_comparisons_total", route=ROUTE, result="mismatch") == 0
    assert metric(client, "shadow_comparisons_total", route=ROUTE, result="match") == 2  # detail + runs read back
    async with aiohttp.ClientSession() as direct, direct.get(f"{legacy_url}/sessions/{session_id}/runs") as runs:
        stored = await runs.json()
    if stage == "shadow":  # legacy answered and dropped the history
        assert "Imported hello" not in answer
        assert metric(client, "shadow_comparisons_total", route=ROUTE, result="expected") == 1
        assert stored == []
    else:  # native answered and kept it; agno reads it back as native does (the matches above)
        assert "Imported hello" in answer and "Said hi" in answer
        assert metric(client, "shadow_comparisons_total", route=ROUTE, result="expected") == 0
        assert [run["run_id"] for run in stored] == [f"{session_id}-r1"]
