"""The services of docker-compose.session.yml as local processes: each one's own command, with
exactly the environment compose gives it, its hostnames mapped to 127.0.0.1 and its ports to free
ones consistently (a URL `http://native:8080` becomes the address the native process listens on;
a DSN on `postgres:5432` becomes the test Postgres).

Only the listen address is added to what compose gives (AGNO_SERVICE_HOST/PORT, AGNO_GATEWAY_HOST/
PORT, uvicorn's --host/--port): in a container the default port is free; here it may not be, and
nothing may listen beyond 127.0.0.1."""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from harness.processes import Process, free_port, spawn

from .model import Compose, Service

VENV_BIN = Path(sys.executable).parent
HEALTH_TIMEOUT_S = 120.0
# Overrides of the listen address only, per service (host variable, port variable).
LISTEN_ENV = {
    "native": ("AGNO_SERVICE_HOST", "AGNO_SERVICE_PORT"),
    "gateway": ("AGNO_GATEWAY_HOST", "AGNO_GATEWAY_PORT"),
}


class Topology:
    def __init__(self, compose: Compose, pg_dsn: str, workdir: Path) -> None:
        self.compose = compose
        self.pg_dsn = pg_dsn
        self.workdir = workdir
        self.ports: dict[tuple[str, int], int] = {}
        self.procs: dict[str, Process] = {}

    # -- address mapping ------------------------------------------------------------------

    def port(self, service: str, container_port: int) -> int:
        """The local port standing for `service:container_port` (the same one every time)."""
        key = (service, container_port)
        if key not in self.ports:
            self.ports[key] = free_port()
        return self.ports[key]

    def url(self, service: str) -> str:
        (target,) = self.compose.services[service].ports
        return f"http://127.0.0.1:{self.port(service, target)}"

    def rewrite(self, value: str, own: str | None = None) -> str:
        """A DSN on the postgres service -> the test Postgres (same driver spelling); a URL on a
        compose service (or on 127.0.0.1, meaning `own`) -> the local address standing for it."""
        parts = urlsplit(value)
        if parts.scheme.startswith("postgres") and parts.hostname == "postgres":
            scheme = parts.scheme  # postgresql or postgresql+psycopg
            return scheme + "://" + self.pg_dsn.split("://", 1)[1]
        if parts.scheme in ("http", "https") and parts.hostname and parts.port:
            host = own if parts.hostname == "127.0.0.1" and own else parts.hostname
            if host in self.compose.services:
                netloc = f"127.0.0.1:{self.port(host, parts.port)}"
                return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
        return value

    def environment(self, service: Service) -> dict[str, str]:
        env = {k: self.rewrite(v) for k, v in service.environment.items()}
        (target,) = service.ports
        if service.name in LISTEN_ENV:
            host_var, port_var = LISTEN_ENV[service.name]
            env[host_var], env[port_var] = "127.0.0.1", str(self.port(service.name, target))
        # What any container has; nothing of this shell's (no AGNO_*, no proxies).
        return {
            "PATH": f"{VENV_BIN}:/usr/bin:/bin",
            "HOME": str(self.workdir),
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            **env,
        }

    def argv(self, service: Service) -> list[str]:
        """The container's process: ENTRYPOINT + command for our image, the CMD for the legacy one."""
        command = service.command()
        (target,) = service.ports
        if service.build_context == self.compose.services["native"].build_context:
            return [str(VENV_BIN / "agentos-session"), *command]  # ENTRYPOINT ["agentos-session"]
        argv = [str(VENV_BIN / command[0]) if (VENV_BIN / command[0]).exists() else command[0], *command[1:]]
        argv[argv.index("--host") + 1] = "127.0.0.1"
        argv[argv.index("--port") + 1] = str(self.port(service.name, target))
        return argv

    # -- processes ------------------------------------------------------------------------

    def start(self, name: str) -> None:
        service = self.compose.services[name]
        # The working directory: the legacy image's WORKDIR holds its build context (app.py);
        # our image needs no checkout, so a directory outside it.
        cwd = service.build_context if name == "legacy" else self.workdir
        log_path = Path(tempfile.mkstemp(prefix=f"compose-{name}-", suffix=".log")[1])
        self.procs[name] = spawn(
            self.argv(service), env=self.environment(service), log_path=log_path, cwd=cwd, name=name
        )

    def wait_healthy(self, name: str) -> None:
        """Run the service's compose healthcheck (addresses mapped) until it passes."""
        check = self.compose.services[name].healthcheck
        assert check[0] == "CMD", check
        # URLs inside arguments too: python -c "...urlopen('http://127.0.0.1:7777/health')".
        argv = [re.sub(r"https?://[^\s'\"]+", lambda m: self.rewrite(m.group(0), own=name), arg) for arg in check[1:]]
        argv = [sys.executable if argv[0] == "python" else argv[0], *argv[1:]]
        if argv[0] == "agentos-session":
            argv[0] = str(VENV_BIN / "agentos-session")
        env = self.environment(self.compose.services[name])  # as `docker exec` in the container

        def healthcheck() -> bool:
            return subprocess.run(argv, capture_output=True, timeout=15, env=env).returncode == 0

        healthcheck.__name__ = f"healthcheck {argv}"
        self.procs[name].wait_ready(healthcheck, HEALTH_TIMEOUT_S, interval_s=0.5)

    def output(self, name: str) -> str:
        return self.procs[name].output(4000)

    def stop(self) -> None:
        for name in reversed(list(self.procs)):
            self.procs[name].stop()
