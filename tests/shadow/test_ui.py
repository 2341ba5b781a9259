"""agno's Agent UI through the gateway: the requests the UI sends, replayed through a gateway
configured with nothing but the legacy URL, the stage and one DSN, at every stage, with legacy
healthy and with legacy stalled; each answer compared with the direct AgentOS's.

The UI (a browser app at http://localhost:3000) sends `Content-Type: application/json` on every
request, so the browser sends a CORS preflight before each one. The sequence: /health, /agents,
/teams, the session lists of an agent and of a team (by `type`, `component_id` and the `db_id` it
read from /agents), a session's runs, a rename and a delete, each after its preflight.

With legacy stalled, what the stage gives to native must still be answered (the sessions routes
and their preflights at `primary`/`native`); what is legacy's (every stage's /health, /agents,
/teams; the sessions routes at `legacy`/`shadow`) is the gateway's 504 after legacy's timeout.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from harness.agentos_app import AGENT_ID, MAIN_DB_ID, TEAM_ID
from harness.seed import S_AGENT_1
from harness.services import reset_gateway_tables
from session_service.config import load_settings
from shadow_proxy.app import create_app
from shadow_proxy.config import STAGES, Gate, Legacy, load_config
from tests.shadow.faults import FaultyLegacy

ORIGIN = "http://localhost:3000"
UI_HEADERS = {"Origin": ORIGIN, "Content-Type": "application/json", "Accept": "application/json"}
STALLED_TIMEOUT_S = 1.0  # the gateway's legacy timeout in the stalled runs (kept short)


@dataclasses.dataclass(frozen=True)
class Step:
    method: str
    path: str
    body: Any = None
    native_at_primary: bool = True  # a sessions route: native's at `primary` and `native`


def read_steps() -> list[Step]:
    return [
        Step("GET", "/health", native_at_primary=False),
        Step("GET", "/agents", native_at_primary=False),
        Step("GET", "/teams", native_at_primary=False),
        Step("GET", f"/sessions?type=agent&component_id={AGENT_ID}&db_id={MAIN_DB_ID}"),
        Step("GET", f"/sessions?type=team&component_id={TEAM_ID}&db_id={MAIN_DB_ID}"),
        Step("GET", f"/sessions/{S_AGENT_1}/runs?type=agent&db_id={MAIN_DB_ID}"),
    ]


def preflight_headers(method: str) -> dict[str, str]:
    return {
        "Origin": ORIGIN,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "content-type",
    }


async def send(
    session: aiohttp.ClientSession,
    base: str,
    method: str,
    path: str,
    body: Any = None,
    *,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes, dict[str, str]]:
    async with session.request(method, base + path, headers=headers or UI_HEADERS, json=body) as r:
        cors = {
            k.lower(): v for k, v in r.headers.items() if k.lower().startswith("access-control-") or k.lower() == "vary"
        }
        return r.status, await r.read(), cors


GatewayOf = Callable[[str, str, float], Awaitable[TestClient]]


@pytest.fixture
async def ui_gateway(pg_dsn: str, seeded: None) -> AsyncIterator[GatewayOf]:
    """A gateway with only AGNO_LEGACY_URL, AGNO_GATEWAY_STAGE and one DSN (native has no
    AGNO_DEFAULT_DB_ID: it learns `main-db` from the AgentOS)."""
    clients: list[TestClient] = []

    async def make(legacy: str, stage: str, timeout_s: float = 10.0) -> TestClient:
        await reset_gateway_tables(pg_dsn)
        config = load_config(None, env={"AGNO_LEGACY_URL": legacy, "AGNO_GATEWAY_STAGE": stage})
        config = dataclasses.replace(config, gate=Gate(enabled=False), legacy=Legacy(url=legacy, timeout_s=timeout_s))
        client = TestClient(TestServer(create_app(config, native_settings=load_settings({"AGNO_PG_DSN": pg_dsn}))))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


async def create_session(session: aiohttp.ClientSession, legacy_url: str) -> str:
    """A session of the basic agent to rename and delete (created on the AgentOS directly)."""
    session_id = f"ui-{uuid.uuid4().hex[:12]}"
    body = {"session_id": session_id, "session_name": "from the UI test", "agent_id": AGENT_ID}
    async with session.post(f"{legacy_url}/sessions?type=agent&db_id={MAIN_DB_ID}", json=body) as r:
        assert r.status == 201, await r.text()
    return session_id


def answered_by(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str, str | None, str | None]]:
    """(method, route, side, fallback) of each client request's access line, in order."""
    out = []
    for record in caplog.records:
        if record.name == "shadow_proxy.access":
            f = record.fields  # type: ignore[attr-defined]  # set by proxying.access via `extra`
            out.append((f["method"], f["route"], f["side"], f["fallback"]))
    return out


@pytest.mark.parametrize("stage", STAGES)
async def test_ui_sequence_with_legacy_healthy(
    stage: str, ui_gateway: GatewayOf, legacy_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    gw = await ui_gateway(legacy_url, stage)
    base = str(gw.make_url("")).rstrip("/")
    caplog.set_level("INFO", logger="shadow_proxy.access")
    async with aiohttp.ClientSession() as session:
        for step in read_steps():
            pre = preflight_headers(step.method)
            assert await send(session, base, "OPTIONS", step.path, headers=pre) == await send(
                session, legacy_url, "OPTIONS", step.path, headers=pre
            ), ("preflight", step.path)
            got = await send(session, base, step.method, step.path)
            assert got == await send(session, legacy_url, step.method, step.path), step.path
            assert got[0] == 200, (step.path, got)
        await _writes(session, base, legacy_url)
    _assert_sides(answered_by(caplog), stage, stalled=False)


async def _writes(session: aiohttp.ClientSession, base: str, legacy_url: str) -> None:
    """A rename and a delete as the UI sends them, each after its preflight; the rename answers
    as the AgentOS's own rename does, the delete is a 204 after which the session is gone."""
    session_id = await create_session(session, legacy_url)
    rename = f"/sessions/{session_id}/rename?type=agent&db_id={MAIN_DB_ID}"
    pre = preflight_headers("POST")
    assert await send(session, base, "OPTIONS", rename, headers=pre) == await send(
        session, legacy_url, "OPTIONS", rename, headers=pre
    )
    renamed = {"session_name": "renamed in the UI"}
    through = await send(session, base, "POST", rename, renamed)
    # The same rename sent to the AgentOS directly answers the same session (its `updated_at`
    # is the second of the rename, the one value that may differ); every other byte must agree.
    direct = await send(session, legacy_url, "POST", rename, renamed)
    assert through[0] == direct[0] == 200 and through[2] == direct[2], (through, direct)
    assert _without_updated_at(through[1]) == _without_updated_at(direct[1]), (through[1], direct[1])
    delete = f"/sessions/{session_id}?type=agent&db_id={MAIN_DB_ID}"
    pre = preflight_headers("DELETE")
    assert await send(session, base, "OPTIONS", delete, headers=pre) == await send(
        session, legacy_url, "OPTIONS", delete, headers=pre
    )
    status, body, _ = await send(session, base, "DELETE", delete)
    assert status == 204 and body == b""
    gone = await send(session, legacy_url, "GET", delete)
    assert gone[0] == 404, gone


def _without_updated_at(body: bytes) -> list[tuple[str, Any]]:
    """The answer's fields in their order, `updated_at` left out."""
    return [(k, v) for k, v in json.loads(body).items() if k != "updated_at"]


def _assert_sides(lines: list[tuple[str, str, str | None, str | None]], stage: str, *, stalled: bool) -> None:
    """Which side answered each request: sessions routes and their preflights by the stage,
    the rest by legacy; never a fallback with legacy healthy (the learned db id is native's)."""
    native_stage = stage in ("primary", "native")
    assert lines, "no access lines"
    for method, route, side, fallback in lines:
        sessions = "/sessions" in route
        expected = "native" if sessions and native_stage else "legacy"
        assert (side, fallback) == (expected, None), (method, route, side, fallback, stage)
        if method == "OPTIONS" and sessions:
            assert route.startswith("OPTIONS /sessions"), route
    if not stalled:
        assert len(lines) == 2 * len(read_steps()) + 4


@pytest.mark.parametrize("stage", STAGES)
async def test_ui_sequence_with_legacy_stalled(
    stage: str, ui_gateway: GatewayOf, legacy_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with FaultyLegacy(legacy_url) as faulty:
        gw = await ui_gateway(faulty.url, stage, STALLED_TIMEOUT_S)  # learns main-db while legacy answers
        faulty.mode = "hold"
        base = str(gw.make_url("")).rstrip("/")
        caplog.set_level("INFO", logger="shadow_proxy.access")
        native_stage = stage in ("primary", "native")
        async with aiohttp.ClientSession() as session:
            for step in read_steps():
                pre = preflight_headers(step.method)
                got_pre = await send(session, base, "OPTIONS", step.path, headers=pre)
                got = await send(session, base, step.method, step.path)
                if step.native_at_primary and native_stage:
                    assert got_pre == await send(session, legacy_url, "OPTIONS", step.path, headers=pre)
                    assert got == await send(session, legacy_url, step.method, step.path), step.path
                else:  # legacy's to answer, and legacy is stalled
                    assert got_pre[0] == got[0] == 504, (step.path, got_pre, got)
            if native_stage:
                await _writes(session, base, legacy_url)
        lines = answered_by(caplog)
        # Failed (504) answers are still legacy's; answered ones by the stage's side.
        _assert_sides(lines, stage, stalled=True)
        faulty.release.set()
