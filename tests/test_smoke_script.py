"""scripts/test-session-api.sh: it passes against the native service, through the gateway in front
of the real AgentOS (stages shadow and primary, every copy compared and matching), and fails
against a wrong service."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from harness.processes import free_port
from harness.services import reset_gateway_tables, start_gateway
from tests.compose.metrics import samples, wait_mirrors_done

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "test-session-api.sh"
OK_STEPS = ["list", "create", "rename", "patch", "get", "runs", "runs-existing", "delete", "get-deleted"]

pytestmark = pytest.mark.skipif(
    shutil.which("curl") is None or shutil.which("jq") is None, reason="the smoke script needs curl and jq"
)


def run_script(base_url: str, **env_extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMOKE_")}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.update(env_extra)
    return subprocess.run(["bash", str(SCRIPT), base_url], capture_output=True, text=True, env=env, timeout=60)


def ok_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith("ok ")]


def test_script_is_executable_bash() -> None:
    assert os.access(SCRIPT, os.X_OK)
    text = SCRIPT.read_text()
    assert text.startswith("#!/usr/bin/env bash")
    assert "set -euo pipefail" in text


def test_walk_passes_against_native(native_url: str) -> None:
    result = run_script(native_url, SMOKE_SESSION_WITH_RUNS="s-agent-1")
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert ok_lines(result) == [f"ok {step}" for step in OK_STEPS]
    assert result.stderr == ""


@pytest.mark.parametrize("stage", ["shadow", "primary"])
def test_walk_passes_through_the_gateway(stage: str, legacy_url: str, pg_dsn: str, tmp_path: Path) -> None:
    """The shipped config/gateway.yaml, native in-process, the real AgentOS as legacy: at `shadow`
    legacy answers and native gets the copies, at `primary` the other way round. Either way the
    client sees a correct walk and the gateway compared the copies and found no difference."""
    asyncio.run(reset_gateway_tables(pg_dsn))  # a stored stage wins over AGNO_GATEWAY_STAGE
    port = free_port()
    env = {
        "AGNO_LEGACY_URL": legacy_url,
        "AGNO_PG_DSN": pg_dsn,
        "AGNO_DEFAULT_DB_ID": "main-db",
        "AGNO_GATEWAY_STAGE": stage,
        "AGNO_GATEWAY_HOST": "127.0.0.1",
        "AGNO_GATEWAY_PORT": str(port),
    }
    proc = start_gateway(port, env, tmp_path / "gateway.log")
    gateway = proc.url
    try:
        result = run_script(gateway, SMOKE_SESSION_WITH_RUNS="s-agent-1")
        assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        assert ok_lines(result) == [f"ok {step}" for step in OK_STEPS]
        metrics = wait_mirrors_done(gateway)
    finally:
        proc.stop()
    stages = {labels["stage"] for labels, value in samples(metrics, "shadow_stage") if value == 1}
    assert stages == {stage}
    compared: dict[str, float] = {}
    for labels, value in samples(metrics, "shadow_comparisons_total"):
        compared[labels["result"]] = compared.get(labels["result"], 0) + value
    # Reads are compared as they are mirrored, writes by reading the session back from both sides.
    assert compared.get("match", 0) >= len(OK_STEPS), (compared, (tmp_path / "gateway.log").read_text()[-3000:])
    assert compared.get("mismatch", 0) == 0 and compared.get("error", 0) == 0, compared
    assert sum(v for _, v in samples(metrics, "shadow_fallbacks_total")) == 0
    assert sum(v for _, v in samples(metrics, "shadow_mirror_skipped_total")) == 0


def test_usage_error_without_url() -> None:
    result = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=10)
    assert result.returncode == 2
    assert "usage:" in result.stderr


# --------------------------------------------------------------------------------------------
# A stub that answers wrong: the script must notice
# --------------------------------------------------------------------------------------------

LIST_BODY = {"data": [], "meta": {"page": 1, "limit": 20, "total_pages": 0, "total_count": 0, "search_time_ms": 0.0}}

# (method, path without query, body) -> (status, json body or None)
Behaviour = Callable[[str, str, dict | None], tuple[int, object]]


class Stub:
    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                stub.requests.append((self.command, self.path, dict(self.headers)))
                status, payload = stub.behaviour(self.command, self.path.split("?")[0], body)
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub_factory() -> Iterator[Callable[[Behaviour], Stub]]:
    stubs: list[Stub] = []

    def make(behaviour: Behaviour) -> Stub:
        stubs.append(Stub(behaviour))
        return stubs[-1]

    yield make
    for stub in stubs:
        stub.close()


def create_fails(method: str, path: str, body: dict | None) -> tuple[int, object]:
    if method == "GET" and path == "/sessions":
        return 200, LIST_BODY
    return 500, {"detail": "Internal server error (KeyError)"}


def test_walk_fails_on_wrong_status(stub_factory: Callable[[Behaviour], Stub]) -> None:
    stub = stub_factory(create_fails)
    result = run_script(stub.url, SMOKE_AUTH="sekrit")
    assert result.returncode != 0
    assert ok_lines(result) == ["ok list"]
    assert "FAIL create: expected status 201, got status 500" in result.stderr
    assert "Internal server error (KeyError)" in result.stderr  # the body is shown
    # SMOKE_AUTH became a bearer header on every request.
    assert [(m, p.split("?")[0]) for m, p, _ in stub.requests] == [("GET", "/sessions"), ("POST", "/sessions")]
    assert all(headers.get("Authorization") == "Bearer sekrit" for _, _, headers in stub.requests)


def test_walk_fails_on_wrong_value(stub_factory: Callable[[Behaviour], Stub]) -> None:
    """Right statuses, wrong content: a create that answers another session id."""
    created: dict[str, object] = {}

    def wrong_id(method: str, path: str, body: dict | None) -> tuple[int, object]:
        if method == "GET" and path == "/sessions":
            return 200, LIST_BODY
        if method == "POST" and path == "/sessions":
            created.update(body or {})
            return 201, {"session_id": "someone-else", "session_state": (body or {}).get("session_state")}
        if method == "DELETE":
            return 204, None
        return 404, {"detail": "Not Found"}

    stub = stub_factory(wrong_id)
    result = run_script(stub.url)
    assert result.returncode != 0
    assert ok_lines(result) == ["ok list"]
    sid = created["session_id"]
    assert f'FAIL create: expected .session_id == "{sid}", got .session_id == "someone-else"' in result.stderr
    # The half-done walk cleans up the session it created.
    assert ("DELETE", f"/sessions/{sid}") in [(m, p) for m, p, _ in stub.requests]
    assert not any("Authorization" in headers for _, _, headers in stub.requests)


def test_walk_fails_when_list_has_no_meta(stub_factory: Callable[[Behaviour], Stub]) -> None:
    stub = stub_factory(lambda method, path, body: (200, {"data": []}))
    result = run_script(stub.url)
    assert result.returncode != 0
    assert ok_lines(result) == []
    assert 'FAIL list: expected .meta | type == "object", got .meta | type == "null"' in result.stderr
    assert [m for m, _, _ in stub.requests] == ["GET"]


def test_walk_fails_on_empty_runs_of_seeded_session(stub_factory: Callable[[Behaviour], Stub]) -> None:
    """A service that answers everything right but has no runs for SMOKE_SESSION_WITH_RUNS."""
    sessions: dict[str, dict] = {}

    def fake(method: str, path: str, body: dict | None) -> tuple[int, object]:
        parts = path.strip("/").split("/")
        if path == "/sessions":
            if method == "GET":
                return 200, LIST_BODY
            sessions[body["session_id"]] = {"session_id": body["session_id"], "session_state": body["session_state"]}
            return 201, sessions[body["session_id"]]
        sid = parts[1]
        if sid not in sessions and sid != "has-runs":
            return 404, {"detail": f"Session with id '{sid}' not found"}
        if parts[-1] == "rename":
            sessions[sid]["session_name"] = body["session_name"]
        elif method == "PATCH":
            sessions[sid].update(body)
        elif parts[-1] == "runs":
            return 200, []
        elif method == "DELETE":
            del sessions[sid]
            return 204, None
        return 200, sessions[sid]

    stub = stub_factory(fake)
    assert run_script(stub.url).returncode == 0  # the fake is right without the extra step
    result = run_script(stub.url, SMOKE_SESSION_WITH_RUNS="has-runs")
    assert result.returncode != 0
    assert ok_lines(result) == [f"ok {s}" for s in ("list", "create", "rename", "patch", "get", "runs")]
    assert "FAIL runs-existing: expected" in result.stderr
    assert sessions == {}  # cleaned up after the failure
