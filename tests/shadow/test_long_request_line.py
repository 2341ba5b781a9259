"""A request line longer than aiohttp's default limit (8,190 bytes) through the gateway process,
at a stage where native answers in-process: the AgentOS (uvicorn) routes such a line and
answers it, so the gateway's listener and the in-process native side must route it too, with
the native service's head limits (session_service.serving.HEAD_LIMIT), not answer a plain-text
400 before routing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from harness.processes import free_port
from harness.services import gateway_env, reset_gateway_tables, start_gateway

LONG_NAME = "n" * 12_000  # the request line is over 12 KB: past aiohttp's 8,190, under HEAD_LIMIT


def test_a_long_request_line_is_routed_as_the_agentos_routes_it(
    pg_dsn: str, seeded: None, legacy_url: str, tmp_path: Path
) -> None:
    asyncio.run(reset_gateway_tables(pg_dsn))  # a stored stage would win over AGNO_GATEWAY_STAGE
    port = free_port()
    proc = start_gateway(port, gateway_env(pg_dsn, legacy_url, port, "native"), tmp_path / "gateway.log")
    try:
        path = f"/sessions?session_name={LONG_NAME}"
        direct = httpx.get(legacy_url + path, timeout=30)
        through = httpx.get(proc.url + path, timeout=30)
        assert (through.status_code, through.content) == (direct.status_code, direct.content)
        assert through.headers["content-type"] == "application/json"
        metrics = httpx.get(proc.url + "/metrics", timeout=10).text
        assert 'shadow_requests_total{code_class="2xx",route="GET /sessions",side="native",stage="native"}' in metrics
    finally:
        proc.stop()
