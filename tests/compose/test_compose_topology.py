"""docker-compose.session.yml run without Docker: legacy, native and gateway started from the
compose file (each service's own command and environment, hosts mapped to 127.0.0.1), waited on
through their own healthchecks in depends_on order, then the smoke script through the gateway."""

from __future__ import annotations

import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from harness.postgres import scratch_database
from harness.processes import environ, spawn

from .metrics import samples, wait_mirrors_done
from .model import OURS, Compose, resolved
from .topology import Topology

REPO = Path(__file__).resolve().parents[2]
SMOKE = REPO / "scripts" / "test-session-api.sh"
STEPS = ["list", "create", "rename", "patch", "get", "runs", "delete", "get-deleted"]


@pytest.fixture(scope="module")
def compose_db(pg_dsn: str) -> Iterator[str]:
    """A database of its own on the test Postgres, as fresh as the compose volume on first `up`:
    agno creates its tables there, the gateway its own."""
    with scratch_database(pg_dsn, "agno_compose") as dsn:
        yield dsn


def run_topology(compose: Compose, dsn: str) -> Iterator[Topology]:
    workdir = Path(tempfile.mkdtemp(prefix="compose-run-"))
    top = Topology(compose, dsn, workdir)
    try:
        for name in compose.start_order():
            if name in OURS:  # postgres is the test's; prometheus and grafana are not ours
                top.start(name)
                top.wait_healthy(name)
        yield top
    finally:
        top.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def topology(compose_db: str) -> Iterator[Topology]:
    yield from run_topology(Compose(), compose_db)


def smoke(url: str, **variables: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1", **variables}
    return subprocess.run(["bash", str(SMOKE), url], capture_output=True, text=True, env=env, timeout=120)


def test_started_in_dependency_order(topology: Topology) -> None:
    assert list(topology.procs) == ["legacy", "native", "gateway"]
    assert all(proc.running for proc in topology.procs.values())


def test_smoke_script_passes_through_the_gateway(topology: Topology) -> None:
    gateway = topology.url("gateway")
    result = smoke(gateway)
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


def test_one_security_key_secures_both_sides_behind_the_gateway(topology: Topology, compose_db: str) -> None:
    """OS_SECURITY_KEY set for compose (shell or .env) reaches legacy and native alike: the walk
    passes with the key, through the gateway, and a request without it is refused by both."""
    key = "compose-" + secrets.token_hex(8)
    compose = Compose(resolved({"OS_SECURITY_KEY": key}))
    for secured in run_topology(compose, compose_db):
        gateway = secured.url("gateway")
        result = smoke(gateway, SMOKE_AUTH=key)
        assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        assert key not in result.stdout + result.stderr
        for side in ("legacy", "native", "gateway"):
            assert httpx.get(secured.url(side) + "/sessions", timeout=10).status_code == 401, side


PROMETHEUS_CONFIG = REPO / "config" / "prometheus" / "prometheus.yml"


def _remapped_prometheus_dir(topology: Topology, target_dir: Path) -> Path:
    """The mounted config/prometheus, with its scrape targets (`gateway:8090`, ...) pointed at the
    processes standing for those services."""
    shutil.copytree(PROMETHEUS_CONFIG.parent, target_dir)
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    for job in config.get("scrape_configs", []):
        for static in job.get("static_configs", []):
            static["targets"] = [topology.rewrite(f"http://{t}").removeprefix("http://") for t in static["targets"]]
    (target_dir / "prometheus.yml").write_text(yaml.safe_dump(config))
    return target_dir


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="Debian's prometheus is not installed (`make tools`)")
def test_prometheus_from_the_compose_file_scrapes_gateway_and_native(topology: Topology, tmp_path: Path) -> None:
    if not PROMETHEUS_CONFIG.exists():
        pytest.skip("config/prometheus/prometheus.yml is not on this branch yet (written by the monitoring work)")
    service = topology.compose.services["prometheus"]
    config_dir = _remapped_prometheus_dir(topology, tmp_path / "etc-prometheus")
    (target,) = service.ports
    mounts = {"/etc/prometheus": str(config_dir), "/prometheus": str(tmp_path / "data")}
    argv = [shutil.which("prometheus") or "prometheus"]
    for arg in service.command():  # the compose command, its container paths and address mapped
        flag, _, value = arg.partition("=")
        for container_path, local in mounts.items():
            if value == container_path or value.startswith(container_path + "/"):
                value = local + value[len(container_path) :]
        if flag == "--web.listen-address":
            value = f"127.0.0.1:{topology.port('prometheus', target)}"
        argv.append(f"{flag}={value}" if value else flag)
    topology.procs["prometheus"] = spawn(argv, env=environ(), log_path=tmp_path / "prometheus.log", cwd=tmp_path)
    topology.wait_healthy("prometheus")  # its compose healthcheck: wget .../-/ready
    base = topology.url("prometheus")
    deadline = time.monotonic() + 90
    while True:
        active = httpx.get(base + "/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
        health = {t["scrapeUrl"]: t["health"] for t in active}
        if health and all(h == "up" for h in health.values()):
            break
        assert time.monotonic() < deadline, f"targets not all up: {health}\n{topology.output('prometheus')}"
        time.sleep(1)
    scraped = {urlsplit(url).port for url in health}
    assert scraped >= {topology.port("gateway", 8090), topology.port("native", 8080)}
    if yaml.safe_load(PROMETHEUS_CONFIG.read_text()).get("rule_files"):
        groups = httpx.get(base + "/api/v1/rules", timeout=10).json()["data"]["groups"]
        assert groups and all(rule["health"] != "err" for g in groups for rule in g["rules"]), groups
