"""The rendered pods, run as a kubelet would run them, minus the container: each Deployment's
command (`agentos-session` + its args) with the environment the manifests give it (literal values,
and the Secret's keys resolved as `secretKeyRef` does), the gateway's ConfigMap written at its
mount path, the working directory outside the checkout, the Services' names mapped to 127.0.0.1.
The probes are then asked at their paths and ports, and readiness is shown to follow the native
side. Only the ports differ: free ones instead of 8080/8090 (other tests share this machine),
and every address is 127.0.0.1."""

from __future__ import annotations

import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.processes import Process, environ, free_port, start
from tests.helm.chart import Rendered, render

PROGRAM = str(Path(sys.executable).parent / "agentos-session")  # the image's ENTRYPOINT
_SCRUB = (
    "OS_SECURITY_KEY",
    "AGNO_PG_DSN",
    "DATABASE_URL",
    "AGNO_SESSION_DSN_MAP",
    "AGNO_DEFAULT_DB_ID",
    "AGNO_GATEWAY_CONFIG",
    "AGNO_LEGACY_URL",
    "AGNO_NATIVE_URL",
    "AGNO_GATEWAY_STAGE",
    "AGNO_GATEWAY_STORE_DSN",
)


def container_env(rendered: Rendered, container: dict[str, Any]) -> dict[str, str]:
    """The container's environment as the kubelet builds it from the rendered objects."""
    env: dict[str, str] = {}
    for entry in container["env"]:
        if "value" in entry:
            env[entry["name"]] = entry["value"]
            continue
        ref = entry["valueFrom"]["secretKeyRef"]
        data = rendered.secret_data(ref["name"])
        if ref["key"] in data:
            env[entry["name"]] = data[ref["key"]]
        else:
            assert ref.get("optional"), f"{entry['name']}: Secret {ref['name']} has no key {ref['key']}"
    return env


class Pod:
    """One container's process, started from its manifest."""

    def __init__(self, rendered: Rendered, component: str, root: Path, overrides: dict[str, str]) -> None:
        deployment = rendered.one("Deployment", component)
        self.spec = deployment["spec"]["template"]["spec"]
        self.container = self.spec["containers"][0]
        self.env = {**container_env(rendered, self.container), **overrides}
        self.port = int(overrides["AGNO_GATEWAY_PORT" if component == "gateway" else "AGNO_SERVICE_PORT"])
        self.log = root / f"{component}.log"
        self.proc: Process | None = None
        self.cwd = root / "home"
        self.cwd.mkdir(exist_ok=True)

    def start(self, timeout_s: float = 90.0) -> None:
        """The container's process, started once it listens (its probes are the tests' to ask)."""
        self.proc = start(
            [PROGRAM, *self.container["args"]],
            env=environ(self.env, scrub=_SCRUB),
            log_path=self.log,
            ready=self.tcp_open,
            cwd=self.cwd,
            name=self.container["name"],
            timeout_s=timeout_s,
        )

    def tcp_open(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def probe(self, kind: str) -> tuple[int, Any]:
        """Ask the container's probe: (status, JSON body) for httpGet, (0 or 1, None) for tcpSocket."""
        probe = self.container[kind]
        if "tcpSocket" in probe:
            return int(self.tcp_open()), None
        response = httpx.get(f"http://127.0.0.1:{self.port}{probe['httpGet']['path']}", timeout=probe["timeoutSeconds"])
        return response.status_code, response.json()

    def wait_probe(self, kind: str, status: int, timeout_s: float = 30.0) -> Any:
        deadline, last = time.monotonic() + timeout_s, None
        while time.monotonic() < deadline:
            last = self.probe(kind)
            if last[0] == status:
                return last[1]
            time.sleep(0.3)
        raise AssertionError(f"{self.container['name']} {kind}: {last}, wanted {status}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()


def _write_mount(rendered: Rendered, pod: Pod, root: Path) -> Path:
    """The gateway's ConfigMap volume, at its mount path under `root`."""
    [mount] = [m for m in pod.container["volumeMounts"] if m["name"] == "config"]
    [volume] = [v for v in pod.spec["volumes"] if v["name"] == "config"]
    configmap = rendered.get("ConfigMap", volume["configMap"]["name"])
    assert configmap is not None
    directory = root / mount["mountPath"].lstrip("/")
    directory.mkdir(parents=True)
    for name, content in configmap["data"].items():
        (directory / name).write_text(content)
    return directory / Path(pod.env["AGNO_GATEWAY_CONFIG"]).relative_to(mount["mountPath"])


@pytest.fixture
def topology(tmp_path: Path, pg_dsn: str) -> Iterator[tuple[Pod, Pod]]:
    """The default install (gateway + native Deployments) with the test database as secret.pgDsn."""
    rendered = render({"secret": {"pgDsn": pg_dsn}})
    native_port, gateway_port = free_port(), free_port()
    native = Pod(
        rendered, "native", tmp_path, {"AGNO_SERVICE_PORT": str(native_port), "AGNO_SERVICE_HOST": "127.0.0.1"}
    )
    gateway = Pod(
        rendered, "gateway", tmp_path, {"AGNO_GATEWAY_PORT": str(gateway_port), "AGNO_GATEWAY_HOST": "127.0.0.1"}
    )
    service = rendered.one("Service", "native")
    # The Service's DNS name and port, mapped to where the native process listens here.
    service_url = f"http://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}"
    assert gateway.env["AGNO_NATIVE_URL"] == service_url
    gateway.env["AGNO_NATIVE_URL"] = f"http://127.0.0.1:{native_port}"
    gateway.env["AGNO_GATEWAY_CONFIG"] = str(_write_mount(rendered, gateway, tmp_path))
    for pod in (native, gateway):
        pod.env["AGNO_EMBEDDED_PG_DIR"] = str(tmp_path / "unused-pg")  # a DSN is set: never started
    try:
        native.start()
        gateway.start()
        yield native, gateway
    finally:
        gateway.stop()
        native.stop()


def test_rendered_pods_pass_their_probes_and_serve(topology: tuple[Pod, Pod]) -> None:
    native, gateway = topology
    assert native.wait_probe("livenessProbe", 1) is None  # tcpSocket
    assert native.wait_probe("readinessProbe", 200)["status"] == "ready"
    assert gateway.wait_probe("livenessProbe", 200) is not None
    assert gateway.wait_probe("readinessProbe", 200)["status"] == "ready"
    # No legacyUrl in the defaults: every group is served natively, through the gateway.
    response = httpx.get(f"http://127.0.0.1:{gateway.port}/sessions", timeout=10)
    assert response.status_code == 200 and "data" in response.json()
    metrics = httpx.get(f"http://127.0.0.1:{gateway.port}/metrics", timeout=10).text
    assert "shadow_ready" in metrics  # what the ServiceMonitor scrapes
    assert not (native.cwd / "config").exists(), "config came from the mount, not a checkout"
    logs = gateway.log.read_text() + native.log.read_text()
    assert logs and native.env["AGNO_PG_DSN"] not in logs, "the DSN from the Secret is never logged"


def test_gateway_readiness_follows_the_native_side(topology: tuple[Pod, Pod]) -> None:
    native, gateway = topology
    gateway.wait_probe("readinessProbe", 200)
    native.stop()
    body = gateway.wait_probe("readinessProbe", 503)
    assert body["status"] == "not_ready" and "native" in body["not_ready"]
    assert gateway.wait_probe("livenessProbe", 200) is not None, "liveness stays up: no restart for a dependency"


def test_in_process_gateway_on_the_embedded_postgres_of_its_emptydir(tmp_path: Path) -> None:
    """native off and no database: one gateway pod, native in-process, Postgres embedded in the
    emptyDir mounted at AGNO_EMBEDDED_PG_DIR's parent (the chart's try-it-out install)."""
    rendered = render({"native": {"enabled": False}})
    port = free_port()
    gateway = Pod(rendered, "gateway", tmp_path, {"AGNO_GATEWAY_PORT": str(port), "AGNO_GATEWAY_HOST": "127.0.0.1"})
    assert "AGNO_NATIVE_URL" not in gateway.env and "AGNO_PG_DSN" not in gateway.env
    gateway.env["AGNO_GATEWAY_CONFIG"] = str(_write_mount(rendered, gateway, tmp_path))
    [data] = [m for m in gateway.container["volumeMounts"] if m["name"] == "data"]
    pg_dir = Path(gateway.env["AGNO_EMBEDDED_PG_DIR"])
    assert pg_dir.parent == Path(data["mountPath"])
    emptydir = Path(tempfile.mkdtemp(prefix="agos-helm-"))  # short: Postgres's socket path has a limit
    gateway.env["AGNO_EMBEDDED_PG_DIR"] = str(emptydir / pg_dir.name)
    try:
        gateway.start(timeout_s=120)
        assert gateway.wait_probe("readinessProbe", 200, timeout_s=60)["status"] == "ready"
        created = httpx.post(
            f"http://127.0.0.1:{port}/sessions", params={"type": "agent"}, json={"session_name": "helm"}, timeout=10
        )
        assert created.status_code in (200, 201), created.text
        assert (emptydir / pg_dir.name / "PG_VERSION").exists(), "the database lives in the emptyDir"
    finally:
        gateway.stop()
        shutil.rmtree(emptydir, ignore_errors=True)
