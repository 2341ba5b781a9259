"""The gateway's access line, in-process: exactly one per client request (none for mirrored
copies, none from the in-process native service at INFO), with the route group (`unrouted`
outside every group), the stage, the side that answered and the fallback reason; never a
header value or a body. Real agno AgentOS, real native service, real Postgres."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any

import pytest

from agentos_session.logs import JsonLogFormatter
from shadow_proxy.appkeys import GATEWAY
from shadow_proxy.config import Listen, Native
from tests.legacy.fixtures import free_port
from tests.shadow.conftest import GatewayFactory, gateway_config

SECRET = "Bearer sk-never-in-logs-123"
BODY_MARK = "body-never-in-logs"
NEW_SESSION = f"acc-{uuid.uuid4().hex[:8]}"
ACCESS_KEYS = {
    "ts",
    "level",
    "logger",
    "msg",
    "method",
    "route",
    "status",
    "duration_ms",
    "request_id",
    "client_ip",
    "group",
    "stage",
    "side",
    "fallback",
}


def at(config: Any, stage: str) -> Any:
    import dataclasses

    return dataclasses.replace(config, groups=tuple(dataclasses.replace(g, stage=stage) for g in config.groups))


def formatted(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The records as the gateway writes them. aiohttp's own access log belongs to the test
    server here; the gateway's command runs without it (`access_log=None`, and
    configure_logging quiets `aiohttp.access`)."""
    formatter = JsonLogFormatter()
    return [json.loads(formatter.format(r)) for r in caplog.records if r.name != "aiohttp.access"]


def requests_with(lines: list[dict[str, Any]], request_id: str) -> list[dict[str, Any]]:
    """Every access line (of any logger) for `request_id`."""
    return [line for line in lines if line["msg"] == "request" and line.get("request_id") == request_id]


async def settle(client: Any) -> None:
    await asyncio.wait_for(client.app[GATEWAY].queue.join(), 30)


async def test_one_line_per_request_with_group_stage_and_side(
    make_gateway: GatewayFactory, legacy_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = await make_gateway(at(gateway_config(legacy_url), "primary"))
    headers = {"Authorization": SECRET, "Cookie": "session=never-in-logs"}
    with caplog.at_level(logging.INFO):
        agents = await client.get("/agents", headers={**headers, "X-Request-ID": "acc-agents"})
        session = await client.get("/sessions/s-agent-1", headers={**headers, "X-Request-ID": "acc-session"})
        created = await client.post(
            "/sessions",
            headers={**headers, "X-Request-ID": "acc-write"},
            json={"session_id": NEW_SESSION, "session_name": BODY_MARK},
        )
        await settle(client)  # the mirrored copy and the write's verification are done: still one line each
    assert (await client.delete(f"/sessions/{NEW_SESSION}")).status == 204
    assert (agents.status, session.status, created.status) == (200, 200, 201)
    lines = formatted(caplog)
    (agents_line,) = requests_with(lines, "acc-agents")
    (session_line,) = requests_with(lines, "acc-session")
    (write_line,) = requests_with(lines, "acc-write")
    for line in (agents_line, session_line, write_line):
        assert set(line) == ACCESS_KEYS
        assert (line["logger"], line["level"], line["client_ip"], line["fallback"]) == (
            "shadow_proxy.access",
            "info",
            "127.0.0.1",
            None,
        )
        assert line["duration_ms"] > 0
    assert (agents_line["method"], agents_line["route"]) == ("GET", "GET unmatched")
    assert (agents_line["group"], agents_line["stage"], agents_line["side"]) == ("unrouted", "legacy", "legacy")
    assert session_line["route"] == "GET /sessions/{session_id}"  # the template, not the concrete path
    assert (session_line["group"], session_line["stage"], session_line["side"]) == ("reads", "primary", "native")
    assert (write_line["route"], write_line["status"]) == ("POST /sessions", 201)
    assert (write_line["group"], write_line["stage"], write_line["side"]) == ("writes", "primary", "native")
    text = "\n".join(json.dumps(line) for line in lines)
    for secret in ("sk-never-in-logs", "never-in-logs", BODY_MARK, "s-agent-1", NEW_SESSION):
        assert secret not in text


async def test_the_line_names_the_fallback(
    make_gateway: GatewayFactory, legacy_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Native over HTTP at a dead port: legacy answers, and the line says why."""
    config = at(gateway_config(legacy_url, native=Native(url=f"http://127.0.0.1:{free_port()}")), "primary")
    client = await make_gateway(config)
    with caplog.at_level(logging.INFO):
        resp = await client.get("/sessions/s-agent-1", headers={"X-Request-ID": "acc-fallback"})
    assert resp.status == 200
    (line,) = requests_with(formatted(caplog), "acc-fallback")
    assert (line["group"], line["stage"], line["side"], line["fallback"]) == (
        "reads",
        "primary",
        "legacy",
        "connection_error",
    )


async def test_a_body_over_the_limit_is_one_line_too(
    make_gateway: GatewayFactory, legacy_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = await make_gateway(at(gateway_config(legacy_url, listen=Listen(max_body_bytes=64)), "shadow"))
    with caplog.at_level(logging.INFO):
        resp = await client.post("/sessions", headers={"X-Request-ID": "acc-413"}, data=b"x" * 1000)
    assert resp.status == 413
    (line,) = requests_with(formatted(caplog), "acc-413")
    assert (line["status"], line["route"], line["side"]) == (413, "POST /sessions", None)


async def test_an_unsafe_request_id_is_replaced_before_it_is_logged(
    make_gateway: GatewayFactory, legacy_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = await make_gateway(at(gateway_config(legacy_url), "shadow"))
    with caplog.at_level(logging.INFO):
        resp = await client.get("/sessions", headers={"X-Request-ID": "x" * 500})
    rid = resp.headers["X-Request-ID"]
    assert rid != "x" * 500 and len(rid) == 32
    (line,) = requests_with(formatted(caplog), rid)
    assert (line["group"], line["stage"], line["side"]) == ("reads", "shadow", "legacy")
