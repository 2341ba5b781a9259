"""The gateway starts the two documented ways, as its own process: `agentos-session gateway
--config config/gateway.yaml` and `python -m aiohttp.web ... shadow_proxy.app:create_app`; and
so does the native service under `python -m aiohttp.web`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.legacy.fixtures import free_port
from tests.shadow.process import GATEWAY_COMMAND, start_process, stop


def start(args: list[str], env: dict[str, str], port: int, tmp_path: Path) -> subprocess.Popen[bytes]:
    try:
        return start_process(port, env, tmp_path / "gateway.log", args)
    except RuntimeError as exc:
        pytest.fail(str(exc))


@pytest.mark.parametrize("how", ["cli", "aiohttp.web"])
def test_the_gateway_runs_as_documented(how: str, legacy_url: str, pg_dsn: str, tmp_path: Path) -> None:
    port = free_port()
    env = {
        "AGNO_PG_DSN": pg_dsn,
        "AGNO_DEFAULT_DB_ID": "main-db",
        "AGNO_LEGACY_URL": legacy_url,
        "AGNO_GATEWAY_CONFIG": GATEWAY_COMMAND[-1],
        "AGNO_GATEWAY_PORT": str(port),
        "AGNO_GATEWAY_STAGE": "primary",
    }
    if how == "cli":
        args = list(GATEWAY_COMMAND)
    else:
        args = [sys.executable, "-m", "aiohttp.web", "-H", "127.0.0.1", "-P", str(port), "shadow_proxy.app:create_app"]
    proc = start(args, env, port, tmp_path)
    try:
        expected = httpx.get(legacy_url + "/sessions/s-team-1?type=team")
        answer = httpx.get(f"http://127.0.0.1:{port}/sessions/s-team-1?type=team")
        assert (answer.status_code, answer.content) == (expected.status_code, expected.content)
        health = httpx.get(f"http://127.0.0.1:{port}/healthz").json()
        assert set(health["stages"]) == {"reads", "writes"}
        assert "shadow_requests_total" in httpx.get(f"http://127.0.0.1:{port}/metrics").text
    finally:
        stop(proc)


def test_the_native_service_runs_under_aiohttp_web(legacy_url: str, pg_dsn: str, tmp_path: Path) -> None:
    port = free_port()
    args = [sys.executable, "-m", "aiohttp.web", "-H", "127.0.0.1", "-P", str(port), "session_service.app:create_app"]
    proc = start(args, {"AGNO_PG_DSN": pg_dsn, "AGNO_DEFAULT_DB_ID": "main-db"}, port, tmp_path)
    try:
        expected = httpx.get(legacy_url + "/sessions/s-agent-1/runs")
        answer = httpx.get(f"http://127.0.0.1:{port}/sessions/s-agent-1/runs")
        assert (answer.status_code, answer.content) == (expected.status_code, expected.content)
    finally:
        stop(proc)
