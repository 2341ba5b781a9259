"""docker-compose.session.yml as Debian's docker-compose resolves it (`docker-compose config`).

The tests read the resolved model, not the raw YAML: interpolation (`${POSTGRES_PASSWORD:-agno}`),
build contexts and port syntax are then exactly what compose itself would hand to Docker.
`docker-compose config` needs no Docker daemon."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.session.yml"
# Our processes: the ones the run test starts from the compose file.
OURS = ("legacy", "native", "gateway")


def docker_compose() -> str:
    path = shutil.which("docker-compose")
    if path is None:
        raise RuntimeError("docker-compose is missing: `make tools` installs Debian's docker-compose")
    return path


def compose_run(*args: str, variables: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`docker-compose -f docker-compose.session.yml ARGS` with none of the shell's variables, so
    every `${VAR:-default}` resolves to the file's own default (or to `variables`, as an
    operator's shell or .env file would set them)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"), **(variables or {})}
    return subprocess.run(
        [docker_compose(), "-f", str(COMPOSE_FILE), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )


def resolved(variables: dict[str, str] | None = None) -> dict[str, Any]:
    result = compose_run("config", variables=variables)
    if result.returncode != 0:
        raise RuntimeError(f"docker-compose config failed:\n{result.stderr}")
    data = yaml.safe_load(result.stdout)
    assert isinstance(data, dict)
    return data


@dataclass(frozen=True)
class Service:
    name: str
    spec: dict[str, Any]

    @property
    def environment(self) -> dict[str, str]:
        return {k: "" if v is None else str(v) for k, v in (self.spec.get("environment") or {}).items()}

    @property
    def ports(self) -> dict[int, int]:
        """container port -> published port."""
        return {int(p["target"]): int(p["published"]) for p in self.spec.get("ports") or []}

    @property
    def healthcheck(self) -> list[str]:
        return list(self.spec["healthcheck"]["test"])

    @property
    def depends_on(self) -> dict[str, dict[str, Any]]:
        return dict(self.spec.get("depends_on") or {})

    @property
    def build_context(self) -> Path | None:
        build = self.spec.get("build")
        return Path(build["context"]) if build else None

    def dockerfile_cmd(self) -> list[str]:
        """The exec-form CMD of the service's Dockerfile (what runs when compose gives no command)."""
        assert self.build_context is not None
        text = (self.build_context / "Dockerfile").read_text()
        # Join continuation lines, then take the last CMD (the one Docker uses).
        text = re.sub(r"\\\n", " ", text)
        cmds = [line.strip()[4:] for line in text.splitlines() if line.strip().startswith("CMD ")]
        assert cmds, f"no CMD in {self.build_context / 'Dockerfile'}"
        cmd = json.loads(cmds[-1])
        assert isinstance(cmd, list)
        return [str(part) for part in cmd]

    def command(self) -> list[str]:
        command = self.spec.get("command")
        return [str(part) for part in command] if command else self.dockerfile_cmd()


class Compose:
    def __init__(self, data: dict[str, Any] | None = None) -> None:
        self.data = resolved() if data is None else data
        self.services = {name: Service(name, spec) for name, spec in self.data["services"].items()}

    def start_order(self) -> list[str]:
        """Services in depends_on order (dependencies first)."""
        graph = {name: set(svc.depends_on) for name, svc in self.services.items()}
        return list(TopologicalSorter(graph).static_order())


def url_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname and parts.port, f"{url!r} names no host and port"
    return parts.hostname, parts.port


def urls_in(args: list[str]) -> list[str]:
    return [m for arg in args for m in re.findall(r"https?://[^\s'\"]+", arg)]
