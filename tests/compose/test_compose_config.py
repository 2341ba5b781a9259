"""docker-compose.session.yml, checked statically: Debian's docker-compose accepts it, every
variable it sets is one the service reads (from the source), every port and health-check URL is
the one the service's command listens on, every DSN names the postgres service's credentials,
and the legacy image's Dockerfile passes hadolint.

tests/compose/test_compose_topology.py then runs the same file's services without Docker."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from session_service.config import load_settings
from shadow_proxy.config import load_config

from .envnames import agno_settings_names, names_in_source, names_read
from .model import REPO, Compose, Service, compose_run, url_port, urls_in

# The ports fixed across the project (COMMON interfaces): published on the host as in the container.
PUBLISHED = {"gateway": 8090, "native": 8080, "legacy": 7777, "prometheus": 9090, "grafana": 3000}


@pytest.fixture(scope="module")
def compose() -> Compose:
    return Compose()


def test_docker_compose_config_accepts_it() -> None:
    result = compose_run("config", "-q")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""


def test_every_service_is_health_checked_and_waits_for_healthy_dependencies(compose: Compose) -> None:
    assert set(compose.services) == {"postgres", "legacy", "native", "gateway", "prometheus", "grafana"}
    for svc in compose.services.values():
        assert svc.healthcheck[0] in ("CMD", "CMD-SHELL"), svc.name
        for dep, how in svc.depends_on.items():
            assert dep in compose.services, f"{svc.name} depends on unknown {dep}"
            assert how == {"condition": "service_healthy"}, f"{svc.name} -> {dep}: {how}"
    assert set(compose.services["gateway"].depends_on) >= {"legacy", "native"}
    assert set(compose.services["prometheus"].depends_on) >= {"gateway", "native"}
    assert compose.start_order()[0] == "postgres"


def test_our_images_run_the_shipped_commands(compose: Compose) -> None:
    native, gateway, legacy = (compose.services[n] for n in ("native", "gateway", "legacy"))
    assert native.build_context == gateway.build_context == REPO  # the root Dockerfile's image
    assert native.command() == ["serve"] and gateway.command() == ["gateway"]
    assert legacy.build_context == REPO / "deploy" / "agentos"
    assert legacy.command()[:2] == ["uvicorn", "app:app"]


# --------------------------------------------------------------------------------------------
# Environment variables: each one set is one the service reads
# --------------------------------------------------------------------------------------------


def test_env_extractor_reads_every_spelling() -> None:
    source = """
import os
a = os.environ["A1"]; b = os.environ.get("B1", "x"); c = os.getenv("C1")
def f(env): return env.get("D1") or env["E1"] or ("F1" in env) or _int(env, "G1", 3) or other.get("NOT_ENV")
"""
    assert names_in_source(source) == {"A1", "B1", "C1", "D1", "E1", "F1", "G1"}


def reads(service: Service) -> set[str]:
    """What the process of `service` reads: its package's source (and the CLI that starts it)."""
    cli = REPO / "agentos_session"
    if service.name == "native":
        return names_read([REPO / "session_service", cli])
    if service.name == "gateway":
        names = names_read([REPO / "shadow_proxy", cli])
        if not service.environment.get("AGNO_NATIVE_URL"):
            # The native service runs in-process and reads its own environment too.
            names |= names_read([REPO / "session_service"])
        return names
    if service.name == "legacy":
        return names_read([REPO / "deploy" / "agentos" / "app.py"]) | agno_settings_names()
    raise AssertionError(service.name)


@pytest.mark.parametrize("name", ["native", "gateway", "legacy"])
def test_every_variable_set_is_read_by_the_service(compose: Compose, name: str) -> None:
    service = compose.services[name]
    known = reads(service)
    assert len(known) >= 3  # the extraction found the service's variables at all
    unread = sorted(set(service.environment) - known)
    assert unread == [], f"{name} sets variables its code never reads: {unread}"


def test_the_services_are_configured_by_the_variables_that_matter(compose: Compose) -> None:
    env = {n: compose.services[n].environment for n in ("native", "gateway", "legacy")}
    assert env["native"]["AGNO_PG_DSN"] and env["legacy"]["AGNO_DB_URL"]
    # The same db id on both sides, so ?db_id= means one database.
    assert env["native"]["AGNO_DEFAULT_DB_ID"] == env["legacy"]["AGNO_DB_ID"] == "main-db"
    assert env["gateway"]["AGNO_GATEWAY_STORE_DSN"]  # a remote native gives the gateway no database
    load_settings(env["native"])  # a configuration the native service accepts
    load_config(REPO / "config" / "gateway.yaml", env=env["gateway"])  # and the gateway


def test_every_dsn_names_the_postgres_service(compose: Compose) -> None:
    pg = compose.services["postgres"].environment
    dsns = [
        (n, k, v)
        for n in ("native", "gateway", "legacy")
        for k, v in compose.services[n].environment.items()
        if v.startswith("postgres")
    ]
    assert {k for _, k, _ in dsns} == {"AGNO_PG_DSN", "AGNO_GATEWAY_STORE_DSN", "AGNO_DB_URL"}
    for name, key, dsn in dsns:
        parts = urlsplit(dsn)
        assert (parts.hostname, parts.port) == ("postgres", 5432), (name, key)
        assert (parts.username, parts.password, parts.path) == (
            pg["POSTGRES_USER"],
            pg["POSTGRES_PASSWORD"],
            "/" + pg["POSTGRES_DB"],
        ), (name, key)
    # agno's PostgresDb wants SQLAlchemy's spelling; asyncpg the plain one.
    assert compose.services["legacy"].environment["AGNO_DB_URL"].startswith("postgresql+psycopg://")
    assert compose.services["native"].environment["AGNO_PG_DSN"].startswith("postgresql://")


# --------------------------------------------------------------------------------------------
# Ports: published, health-checked and referenced ports are the ones the commands listen on
# --------------------------------------------------------------------------------------------


def listen_port(service: Service) -> int:
    """The port the service's own command listens on, given the compose environment."""
    env = service.environment
    if service.name == "native":
        return load_settings(env).port
    if service.name == "gateway":
        # The image's packaged config/gateway.yaml (or none): both must agree.
        ports = {
            load_config(REPO / "config" / "gateway.yaml", env=env).listen.port,
            load_config(None, env=env).listen.port,
        }
        assert len(ports) == 1, ports
        return ports.pop()
    if service.name == "grafana":
        return int(env.get("GF_SERVER_HTTP_PORT", 3000))  # Grafana's default
    command = service.command()
    if service.name == "legacy":
        assert command[command.index("--host") + 1] == "0.0.0.0"
        return int(command[command.index("--port") + 1])
    if service.name == "prometheus":
        (address,) = [a.split("=", 1)[1] for a in command if a.startswith("--web.listen-address=")]
        return int(address.rsplit(":", 1)[1])
    raise AssertionError(service.name)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_and_health_checked_ports_are_the_listening_port(compose: Compose, name: str) -> None:
    service = compose.services[name]
    port = listen_port(service)
    assert service.ports == {port: PUBLISHED[name]}
    assert port == PUBLISHED[name]
    urls = urls_in(service.healthcheck)
    assert urls, f"{name}'s healthcheck names no URL"
    assert {url_port(u) for u in urls} == {("127.0.0.1", port)}


def test_native_and_gateway_health_checks_ask_for_readiness(compose: Compose) -> None:
    for name in ("native", "gateway"):
        check = compose.services[name].healthcheck
        assert check[:3] == ["CMD", "agentos-session", "probe"], check
        assert urls_in(check)[0].endswith("/readyz")
    assert urls_in(compose.services["legacy"].healthcheck)[0].endswith("/health")  # agno's route


def test_the_gateway_reaches_each_side_on_its_listening_port(compose: Compose) -> None:
    env = compose.services["gateway"].environment
    assert url_port(env["AGNO_LEGACY_URL"]) == ("legacy", listen_port(compose.services["legacy"]))
    assert url_port(env["AGNO_NATIVE_URL"]) == ("native", listen_port(compose.services["native"]))


# --------------------------------------------------------------------------------------------
# Prometheus and Grafana mounts (their files are written beside this one)
# --------------------------------------------------------------------------------------------


def mounts(service: Service) -> dict[str, Path]:
    """container path -> host path of the bind mounts."""
    out = {}
    for volume in service.spec.get("volumes") or []:
        source, target = volume.split(":")[:2]
        if source.startswith("/"):
            out[target] = Path(source)
    return out


def test_monitoring_mounts_are_the_shared_config_directories(compose: Compose) -> None:
    assert mounts(compose.services["prometheus"]) == {"/etc/prometheus": REPO / "config" / "prometheus"}
    assert mounts(compose.services["grafana"]) == {
        "/etc/grafana/provisioning": REPO / "grafana" / "provisioning",
        "/var/lib/grafana/dashboards": REPO / "grafana" / "dashboards",
    }
    assert "--config.file=/etc/prometheus/prometheus.yml" in compose.services["prometheus"].command()


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path.relative_to(REPO)} is not on this branch yet (written by the monitoring work)")
    return path


def test_prometheus_scrapes_the_compose_services(compose: Compose) -> None:
    config = yaml.safe_load(_require(REPO / "config" / "prometheus" / "prometheus.yml").read_text())
    targets = {t for job in config["scrape_configs"] for sc in job.get("static_configs", []) for t in sc["targets"]}
    for name in ("gateway", "native"):
        assert f"{name}:{listen_port(compose.services[name])}" in targets
    for rule_file in config.get("rule_files", []):
        assert (REPO / "config" / "prometheus" / rule_file).exists(), rule_file


def test_grafana_provisioning_points_into_the_mounts(compose: Compose) -> None:
    providers = yaml.safe_load(
        _require(REPO / "grafana" / "provisioning" / "dashboards" / "dashboards.yml").read_text()
    )
    paths = {p["options"]["path"] for p in providers["providers"]}
    assert paths and all(p.startswith("/var/lib/grafana/dashboards") for p in paths), paths
    sources = yaml.safe_load(_require(REPO / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())
    urls = {d.get("url") for d in sources["datasources"]}
    assert f"http://prometheus:{listen_port(compose.services['prometheus'])}" in urls


# --------------------------------------------------------------------------------------------
# The legacy image
# --------------------------------------------------------------------------------------------

LEGACY_DOCKERFILE = REPO / "deploy" / "agentos" / "Dockerfile"


def test_legacy_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint") or str(Path(__import__("sys").executable).parent / "hadolint")
    result = subprocess.run(
        [hadolint, "--failure-threshold", "info", str(LEGACY_DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_legacy_dockerfile_essentials() -> None:
    lines = [line.strip() for line in LEGACY_DOCKERFILE.read_text().splitlines()]
    assert "FROM python:3.11-slim" in lines
    assert '"agno[os,postgres]==3.1.10"' in LEGACY_DOCKERFILE.read_text()  # the tests' legacy side
    (user,) = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert user not in ("root", "0")
    assert "EXPOSE 7777" in lines
    assert any(line.startswith("HEALTHCHECK ") for line in lines)
    assert any(line.startswith('CMD ["') for line in lines)  # exec form
    assert "COPY app.py /app/app.py" in lines and "WORKDIR /app" in lines
