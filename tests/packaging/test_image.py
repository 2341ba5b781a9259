"""The image's contents, proven without Docker (no daemon here, no base image to pull).

The Dockerfile's own RUN commands are read from it and run here, with its paths mapped into a
temporary directory: the build stage's command on a copy of the build context (.dockerignore
applied as Docker applies it), then the final stage's command on the wheels it built, into a
fresh virtualenv. The tool installed that way then runs from a working directory outside the
checkout, with nothing of the checkout on its path, against the test Postgres and the real
agno AgentOS: every default config file it uses must be the one installed in the package.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness import processes
from harness.postgres import dsn_with_database, scratch_database
from harness.processes import Process, free_port, stop
from tests.packaging.dockerfile import REPO, Stage, copy_context, exec_form, parse_run, stages

PACKAGES = ("agentos_session", "comparator", "session_service", "shadow_proxy")
STEP_TIMEOUT_S = 300  # one pip step (wheels of every dependency, or installing them)
START_TIMEOUT_S = 60


@dataclass
class Image:
    """The final stage, unpacked into `root`: `path()` maps an absolute path of the image there."""

    root: Path
    final: Stage
    build_output: str
    wheels: Path
    venv: Path

    def path(self, image_path: str) -> Path:
        return self.root / image_path.lstrip("/")

    def env(self, **extra: str) -> dict[str, str]:
        """The final stage's ENV (paths mapped) over this environment, without anything that
        could point Python at the checkout or configure the services from the developer's shell."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AGNO_", "PYTHON", "PIP_"))
            and k not in ("VIRTUAL_ENV", "DATABASE_URL", "OS_SECURITY_KEY")
        }
        for name, value in self.final.env().items():
            if name == "PATH":  # the image's directories, mapped, then this machine's PATH for $PATH
                value = ":".join(os.environ["PATH"] if p == "$PATH" else str(self.path(p)) for p in value.split(":"))
            elif name == "AGNO_EMBEDDED_PG_DIR":
                value = str(self.path(value))
            env[name] = value
        env.update(extra)
        return env

    @property
    def workdir(self) -> Path:
        (workdir,) = self.final.values("WORKDIR")
        path = self.path(workdir)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def argv(self, args: tuple[str, ...] | list[str]) -> list[str]:
        """What `docker run IMAGE args...` executes: ENTRYPOINT (found on the image's PATH) with
        `args`, or with CMD when there are none."""
        entrypoint = exec_form(self.final.values("ENTRYPOINT")[0])
        program = shutil.which(entrypoint[0], path=self.env()["PATH"])
        assert program and Path(program).is_relative_to(self.venv), program
        return [program, *entrypoint[1:], *(args or exec_form(self.final.values("CMD")[0]))]

    def run(self, *args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
        """`docker run IMAGE args...`, in the WORKDIR."""
        return subprocess.run(
            self.argv(args), cwd=self.workdir, env=self.env(**env), capture_output=True, text=True, timeout=timeout
        )


def mapped(argv: list[str], paths: dict[str, Path]) -> list[str]:
    """argv with every image path that starts with a key of `paths` moved under its value."""
    result = []
    for word in argv:
        for image_path, here in sorted(paths.items(), key=lambda kv: -len(kv[0])):
            if word == image_path or word.startswith(image_path.rstrip("/") + "/"):
                word = str(here / word[len(image_path) :].lstrip("/"))
                break
        result.append(word)
    return result


def run_step(argv: list[str], cwd: Path, env: dict[str, str]) -> str:
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=STEP_TIMEOUT_S)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{argv} failed:\n{output[-4000:]}"
    return output


@pytest.fixture(scope="module")
def image() -> Iterator[Image]:
    # Not under pytest's basetemp: run as root, the embedded Postgres runs as its own user, who
    # must traverse every directory above the venv and the data dir, and every pytest start
    # resets pytest-of-root to 0700 (other test runs may start meanwhile).
    root = Path(tempfile.mkdtemp(prefix="agos-image-"))
    try:
        yield build_image(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def build_image(root: Path) -> Image:
    """Each stage's filesystem is a directory (`/` maps to it); the final stage's bind mounts map
    to the build stage's directory, as BuildKit mounts them."""
    build, final = stages()
    python = {"PYTHON": sys.executable}  # the scripts' `python`: the image's is python:3.11's, ours is 3.11 too

    # Build stage: `COPY . .` into its WORKDIR, then its RUN, as written.
    build_fs = {"/": root / "build"}
    (build_workdir,) = build.values("WORKDIR")
    workdir = Path(mapped([build_workdir], build_fs)[0])
    workdir.mkdir(parents=True)
    copy_context(workdir)
    (build_run,) = [parse_run(v) for v in build.values("RUN")]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # not set in that stage
    build_output = run_step(mapped(build_run.argv, build_fs), workdir, {**env, **build.env(), **python})

    # Final stage: its RUN with the build stage's files bind-mounted where the Dockerfile mounts them.
    final_root = root / "final"
    (install_run,) = [parse_run(v) for v in final.values("RUN") if "--mount=" in v]
    mounts = {target: Path(mapped([source], build_fs)[0]) for target, (_stage, source) in install_run.mounts.items()}
    assert all(p.exists() for p in mounts.values()), mounts
    (wheels,) = [p for p in mounts.values() if p.is_dir() and any(p.glob("*.whl"))]
    install_env = {**os.environ, **{k: v for k, v in final.env().items() if k != "PATH"}, **python}
    run_step(mapped(install_run.argv, {**mounts, "/": final_root}), root, install_env)
    venv = Path(mapped([final.env()["PATH"].split(":")[0]], {"/": final_root})[0]).parent  # PATH=<venv>/bin:...
    image = Image(final_root, final, build_output, wheels, venv)
    assert (image.venv / "bin" / "agentos-session").exists()
    return image


# ---- what was built -----------------------------------------------------------------------------


def test_the_build_prints_no_deprecation(image: Image) -> None:
    assert not re.search(r"deprecat|BuildBackendWarning|SetuptoolsWarning", image.build_output, re.I), (
        image.build_output
    )


def test_the_build_backend_alone_prints_no_warning(tmp_path: Path) -> None:
    """`python -m build` shows the backend's own output (pip's, above, also has this machine's
    index notices): not one warning, on a copy of the build context, for the sdist and for the
    wheel built from that sdist (so the sdist carries the config files too)."""
    copy_context(tmp_path / "src")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # its "byte-compiling disabled" notes
    output = run_step([sys.executable, "-m", "build", "--outdir", str(tmp_path / "dist"), "."], tmp_path / "src", env)
    assert "Successfully built" in output and len(list((tmp_path / "dist").glob("agentos_session-*"))) == 2
    assert not re.search(r"warn|deprecat", output, re.I), output
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "agentos_session/config/known_differences.yaml" in names
    assert "shadow_proxy/templates/report.html.j2" in names  # the report's templates are package data


def test_the_wheel_holds_every_module_and_config_file(image: Image) -> None:
    (wheel,) = image.wheels.glob("agentos_session-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        str(p.relative_to(REPO))
        for part in PACKAGES
        for p in (REPO / part).rglob("*.py")
        if "__pycache__" not in p.parts
    }
    expected |= {
        "agentos_session/config/" + str(p.relative_to(REPO / "config"))
        for p in (REPO / "config").rglob("*")
        if p.is_file() and p.suffix in (".py", ".yaml", ".yml")
    }
    assert expected - names == set()
    # The development harness, the tests and the benchmarks stay in the checkout.
    assert not [n for n in names if n.split("/")[0] in ("harness", "tests", "benchmarks", "scripts")]
    assert {
        "agentos_session/config/gateway.yaml",
        "agentos_session/config/comparator.yaml",
        "agentos_session/config/known_differences.yaml",
    } <= names


def test_version(image: Image) -> None:
    run = image.run("--version")
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert (run.returncode, run.stdout.strip()) == (0, f"agentos-session {version}"), run.stderr


def test_every_default_file_is_the_installed_packages(image: Image) -> None:
    """The parts, the shipped files and every command's default file are inside the venv; the
    shipped rules carry the known differences."""
    script = """
import json, argparse
import agentos_session, comparator, session_service, shadow_proxy
from agentos_session.cli import build_parser
from agentos_session.defaults import default_file
from comparator import Rules
from shadow_proxy.app import DEFAULT_CONFIG
from shadow_proxy.config import GatewayConfig
(sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
print(json.dumps({
    "modules": [m.__file__ for m in (agentos_session, comparator, session_service, shadow_proxy)],
    "files": [str(default_file(n)) for n in ("gateway.yaml", "comparator.yaml", "known_differences.yaml")],
    "app": [str(DEFAULT_CONFIG)],
    "commands": {"gateway": sub.choices["gateway"].get_default("config"),
                 **{c: sub.choices[c].get_default("rules") for c in ("compare", "replay", "learn-noise")}},
    "known": sorted(k.id for k in Rules.load(default_file("comparator.yaml")).known),
    "gateway_known": sorted(k.id for k in GatewayConfig().load_rules().known),
}))
"""
    proc = subprocess.run(
        [str(image.venv / "bin" / "python"), "-c", script],
        cwd=image.workdir,
        env=image.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    paths = found["modules"] + found["files"] + found["app"] + list(found["commands"].values())
    outside = [p for p in paths if not Path(p).resolve().is_relative_to(image.venv.resolve())]
    assert outside == [] and all(Path(p).is_file() for p in paths)
    assert not any(Path(p).resolve().is_relative_to(REPO) for p in paths)
    assert "list-page-zero" in found["known"]
    assert found["gateway_known"] == found["known"]  # a gateway with no `rules:` judges with the shipped ones
    check = subprocess.run(
        [str(image.venv / "bin" / "python"), "-m", "pip", "check"], capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0, check.stdout + check.stderr


# ---- what it runs ------------------------------------------------------------------------------


def start(image: Image, argv: list[str], port: int, name: str, **env: str) -> Process:
    """`docker run IMAGE argv` in the background; waits for /healthz (the process exiting or
    START_TIMEOUT_S passing fails the test with its log)."""
    url = f"http://127.0.0.1:{port}"
    try:
        service = processes.start(
            image.argv(argv),
            env=image.env(**env),
            log_path=image.root / f"{name}.log",
            ready=url + "/healthz",
            cwd=image.workdir,
            name=name,
            timeout_s=START_TIMEOUT_S,
        )
    except RuntimeError as exc:
        pytest.fail(str(exc))
    service.url = url
    return service


def comparisons(metrics_text: str, route: str) -> dict[str, float]:
    """shadow_comparisons_total{route=route} by result, parsed with Prometheus' own parser."""
    return {
        s.labels["result"]: s.value
        for family in text_string_to_metric_families(metrics_text)
        for s in family.samples
        if s.name == "shadow_comparisons_total" and s.labels.get("route") == route
    }


@pytest.fixture
def store_dsn(pg_dsn: str) -> Iterator[str]:
    """A database of its own for the gateway's store: no stage stored by another test applies."""
    with scratch_database(pg_dsn, "agentos_pkg") as dsn:
        yield dsn
    assert dsn == dsn_with_database(pg_dsn, urlsplit(dsn).path.lstrip("/"))  # the test server's


def test_serve_and_gateway_use_the_shipped_config(
    image: Image, pg_dsn: str, seeded: None, legacy_url: str, store_dsn: str
) -> None:
    """`serve`, then `gateway` with neither --config nor AGNO_GATEWAY_CONFIG at stage shadow in
    front of the real AgentOS and that service: `page=0` (legacy 500, native 422) is counted
    `expected`, which only the shipped known differences make it. Then `replay` and `compare`
    from the same install judge it `expected` without --rules, `learn-noise` runs, and `probe`
    sees both up."""
    native_port, gateway_port = free_port(), free_port()
    native = gateway = None
    record = image.root / "recorded.jsonl"
    try:
        native = start(
            image,
            ["serve", "--host", "127.0.0.1", "--port", str(native_port)],
            native_port,
            "serve",
            AGNO_PG_DSN=pg_dsn,
            AGNO_DEFAULT_DB_ID="main-db",
        )
        gateway = start(
            image,
            [],
            gateway_port,
            "gateway",  # no arguments: the image's CMD
            AGNO_GATEWAY_HOST="127.0.0.1",
            AGNO_GATEWAY_PORT=str(gateway_port),
            AGNO_LEGACY_URL=legacy_url,
            AGNO_NATIVE_URL=native.url,
            AGNO_GATEWAY_STORE_DSN=store_dsn,
            AGNO_GATEWAY_RECORD=str(record),
        )
        stages_now = httpx.get(gateway.url + "/shadow/stage").json()
        assert stages_now["groups"]["reads"]["stage"] == "shadow", stages_now  # gateway.yaml's initial stage

        for target in ("/sessions?page=0", "/sessions/s-team-1?type=team"):
            answer, direct = httpx.get(gateway.url + target), httpx.get(legacy_url + target)
            assert (answer.status_code, answer.content) == (direct.status_code, direct.content)  # legacy answers
        assert httpx.get(native.url + "/sessions?page=0").status_code == 422

        deadline, seen = time.monotonic() + 30, {}
        while time.monotonic() < deadline:
            seen = {
                "GET /sessions": comparisons(httpx.get(gateway.url + "/metrics").text, "GET /sessions"),
                "GET /sessions/{session_id}": comparisons(
                    httpx.get(gateway.url + "/metrics").text, "GET /sessions/{session_id}"
                ),
            }
            if sum(seen["GET /sessions"].values()) and sum(seen["GET /sessions/{session_id}"].values()):
                break
            time.sleep(0.2)
        assert seen["GET /sessions"].get("expected") == 1 and not seen["GET /sessions"].get("mismatch"), (
            seen,
            gateway.output(),
        )
        assert seen["GET /sessions/{session_id}"].get("match") == 1, (seen, gateway.output())

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (not record.exists() or len(record.read_text().splitlines()) < 2):
            time.sleep(0.2)
        replay = image.run(
            "replay", str(record), "--legacy", legacy_url, "--native", native.url, "--color", "never", timeout=120
        )
        assert replay.returncode == 0, replay.stdout + replay.stderr
        assert "known difference: list-page-zero" in replay.stdout

        compare = image.run("compare", f"{legacy_url}/sessions?page=0", f"{native.url}/sessions?page=0", "--json")
        assert compare.returncode == 0, compare.stdout + compare.stderr
        assert json.loads(compare.stdout)["result"] == "expected"

        requests = image.root / "requests.txt"
        requests.write_text("GET /sessions/s-team-1?type=team\n")
        noise = image.run(
            "learn-noise",
            "--base",
            native.url,
            "--requests",
            str(requests),
            "--repeat",
            "2",
            "--min-samples",
            "2",
            "--model",
            str(image.root / "noise.yaml"),
        )
        assert noise.returncode == 0, noise.stderr
        assert "2 pairs from" in noise.stdout and "0 proposal(s)" in noise.stderr  # the native service is stable

        # Each as the image's HEALTHCHECK asks it: /readyz answers 200 (the probe's logic is test_probe.py's).
        for service in (gateway, native):
            up = image.run("probe", "--url", service.url + "/readyz")
            assert (up.returncode, up.stdout.strip()) == (0, f"ready: {service.url}/readyz"), up.stderr
    finally:
        stop(gateway)
        stop(native)
    down = image.run("probe", "--url", gateway.url + "/readyz", "--url", native.url + "/readyz", "--timeout", "2")
    assert down.returncode == 1 and gateway.url in down.stderr and native.url in down.stderr


def test_serve_without_a_dsn_keeps_the_embedded_postgres_on_the_volume(image: Image) -> None:
    """No AGNO_PG_DSN: the embedded Postgres, in AGNO_EMBEDDED_PG_DIR (the image's volume)."""
    pg_dir = Path(image.env()["AGNO_EMBEDDED_PG_DIR"])
    port = free_port()
    service = None
    try:
        service = start(image, ["serve", "--host", "127.0.0.1", "--port", str(port)], port, "serve-embedded")
        assert (pg_dir / "PG_VERSION").is_file(), service.output()
        assert httpx.get(service.url + "/sessions").status_code == 200, service.output()
    finally:
        stop(service)
    # The service stops its Postgres when it exits (a restarted container finds the volume clean).
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (pg_dir / "postmaster.pid").exists():
        time.sleep(0.2)
    left = (pg_dir / "postmaster.pid").exists()
    if left:  # do not leave it running for the next test: stop it by its pid, then fail
        os.kill(abs(int((pg_dir / "postmaster.pid").read_text().split()[0])), signal.SIGTERM)
    assert not left, "the embedded Postgres outlived the service"
