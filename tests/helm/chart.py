"""The Helm chart as Helm itself renders it, for the tests of deploy/helm/agno-session.

There is no helm binary here: `helm-python-sdk` carries Helm's Go engine (libhelm_c) and exposes
its offline `lint`, `Chart.load(...).render(...)` and `package`, which are what `helm lint` and
`helm template` run. Each value set below is one way an operator deploys the chart.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "deploy" / "helm" / "agno-session"
RELEASE, NAMESPACE = "parity", "sessions"
KUBE_VERSION = "1.30.0"
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule", "AnalysisTemplate", "MetricTemplate"}

# Test-only credentials: never real, never logged by the tests.
FAKE_DSN = "postgresql://agno:test-only@postgres.sessions.svc:5432/agno"
FAKE_STORE_DSN = "postgresql://gw:test-only@postgres.sessions.svc:5432/gateway"

VALUE_SETS: dict[str, dict[str, Any]] = {
    # `helm install parity deploy/helm/agno-session`: nothing set.
    "defaults": {},
    # A production-like install on the Prometheus Operator with a canary controller: credentials
    # in a Secret of the operator's own, every optional custom resource on, a legacy side.
    "operator": {
        "secret": {"existingSecret": "agno-credentials", "existingSecretKeys": {"storeDsn": None}},
        "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus"}},
        "prometheusRule": {"enabled": True, "labels": {"release": "kube-prometheus"}},
        "parityAnalysis": {"argoRollouts": {"enabled": True}, "flagger": {"enabled": True}, "minParity": 0.995},
        "gateway": {
            "legacyUrl": "http://agentos.sessions.svc:7777",
            "stage": "shadow",
            "sampleRate": 0.5,
            "record": "/tmp/requests.jsonl",
            "extraEnv": {"AGNO_GATEWAY_HOST": "0.0.0.0"},
        },
        "env": {"AGNO_POOL_MAX_SIZE": 20},
    },
    # One workload: the native service in-process in the gateway, fixed replicas, the chart's
    # own Secret holding every credential.
    "in-process": {
        "native": {"enabled": False},
        "gateway": {
            "autoscaling": {"enabled": False},
            "replicas": 3,
            "legacyUrl": "http://agentos:7777",
            "stage": "primary",
        },
        "secret": {
            "pgDsn": FAKE_DSN,
            "securityKey": "test-only-key",
            "adminToken": "test-only-token",
            "storeDsn": FAKE_STORE_DSN,
        },
    },
}


@dataclass(frozen=True)
class Rendered:
    """One `helm template` output: the manifests by kind and name, and NOTES.txt."""

    manifests: tuple[dict[str, Any], ...]
    notes: str

    def kinds(self) -> list[str]:
        return sorted(m["kind"] for m in self.manifests)

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.manifests if m["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        return next((m for m in self.of_kind(kind) if m["metadata"]["name"] == name), None)

    def one(self, kind: str, component: str | None = None) -> dict[str, Any]:
        found = [
            m
            for m in self.of_kind(kind)
            if component is None or m["metadata"]["labels"].get("app.kubernetes.io/component") == component
        ]
        assert len(found) == 1, f"expected one {kind} {component or ''}, got {[m['metadata']['name'] for m in found]}"
        return found[0]

    def secret_data(self, name: str) -> dict[str, str]:
        secret = self.get("Secret", name)
        assert secret is not None, f"no Secret {name} rendered"
        return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}


def render(values: dict[str, Any], chart_dir: Path = CHART_DIR) -> Rendered:
    with helm_python.Chart.load(chart_dir) as chart:
        return _parse(chart.render(values=values, name=RELEASE, namespace=NAMESPACE, is_install=True))


def render_archive(archive: bytes, values: dict[str, Any]) -> Rendered:
    with helm_python.Chart.load_archive(archive) as chart:
        return _parse(chart.render(values=values, name=RELEASE, namespace=NAMESPACE, is_install=True))


def _parse(output: dict[str, str]) -> Rendered:
    manifests: list[dict[str, Any]] = []
    notes = ""
    for path, text in sorted(output.items()):
        if path.endswith("NOTES.txt"):
            notes = text
            continue
        manifests.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return Rendered(tuple(manifests), notes)


def lint(values: dict[str, Any]) -> dict[str, Any]:
    return helm_python.lint(CHART_DIR, values, strict=True, namespace=NAMESPACE, kube_version=f"v{KUBE_VERSION}")


def containers(rendered: Rendered) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(Deployment, container) for every container of every Deployment."""
    for deployment in rendered.of_kind("Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            yield deployment, container


def env_values(container: dict[str, Any]) -> dict[str, str]:
    """The literal `value`s of a container's env (not those from Secrets)."""
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
