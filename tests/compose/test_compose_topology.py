"""docker-compose.session.yml run without Docker: legacy, native and gateway started from the
compose file (each service's own command and environment, hosts mapped to 127.0.0.1), waited on
through their own healthchecks in depends_on order, then the smoke script through the gateway."""

from __future__ import annotations

import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from tests.legacy.fixtures import create_database, drop_database

from .metrics import samples, wait_mirrors_done
from .model import OURS, Compose
from .topology import Topology

REPO = Path(__file__).resolve().parents[2]
SMOKE = REPO / "scripts" / "test-session-api.sh"
STEPS = ["list", "create", "rename", "patch", "get", "runs", "delete", "get-deleted"]


@pytest.fixture(scope="module")
def compose_db(pg_dsn: str) -> Iterator[str]:
    """A database of its own on the test Postgres, as fresh as the compose volume on first `up`:
    agno creates its tables there, the gateway its own."""
    name = f"agno_compose_{secrets.token_hex(4)}"
    dsn = create_database(pg_dsn, name)
    try:
        yield dsn
    finally:
        drop_database(pg_dsn, name)


@pytest.fixture(scope="module")
def topology(compose_db: str) -> Iterator[Topology]:
    compose = Compose()
    workdir = Path(tempfile.mkdtemp(prefix="compose-run-"))
    top = Topology(compose, compose_db, workdir)
    try:
        for name in compose.start_order():
            if name in OURS:  # postgres is the test's; prometheus and grafana are not ours
                top.start(name)
                top.wait_healthy(name)
        yield top
    finally:
        top.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def test_started_in_dependency_order(topology: Topology) -> None:
    assert list(topology.procs) == ["legacy", "native", "gateway"]
    assert all(proc.poll() is None for proc in topology.procs.values())


def test_smoke_script_passes_through_the_gateway(topology: Topology) -> None:
    gateway = topology.url("gateway")
    env = {"PATH": "/usr/bin:/bin", "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}
    result = subprocess.run(["bash", str(SMOKE), gateway], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}\n{topology.output('gateway')}"
    assert [line for line in result.stdout.splitlines() if line.startswith("ok ")] == [f"ok {s}" for s in STEPS]

    # The walk really went through both sides: at stage `shadow` legacy answered and the native
    # process (its own, over HTTP) got the copies, and the gateway compared them.
    metrics = wait_mirrors_done(gateway)
    compared = {labels["result"]: value for labels, value in samples(metrics, "shadow_comparisons_total")}
    assert compared.get("match", 0) > 0, compared
    assert compared.get("mismatch", 0) == 0 and compared.get("error", 0) == 0, compared
    native = httpx.get(topology.url("native") + "/metrics", timeout=10).text
    assert sum(v for _, v in samples(native, "agno_session_requests_total")) > 0
    legacy = httpx.get(topology.url("legacy") + "/health", timeout=10)
    assert legacy.status_code == 200
