"""Shared fixtures: the legacy side (real agno AgentOS, tests/legacy) and the native side.

Both sides are real processes on 127.0.0.1 over one real Postgres, so a differential test sends
the same bytes to both and compares the bytes that come back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.register_assert_rewrite("tests.legacy.fixtures")

from tests.legacy.fixtures import SECURITY_KEY, _answers, free_port  # noqa: E402

pytest_plugins = ["tests.legacy.fixtures"]

REPO_ROOT = Path(__file__).resolve().parents[1]
_SCRUBBED = ("OS_SECURITY_KEY", "AGNO_PG_DSN", "DATABASE_URL", "AGNO_SESSION_DSN_MAP", "AGNO_DEFAULT_DB_ID")


class NativeProcess:
    """`python -m session_service serve` on a free port, with the given environment."""

    def __init__(self, env_extra: dict[str, str], name: str = "native") -> None:
        env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
        env.update(env_extra)
        env["PYTHONUNBUFFERED"] = "1"
        self.name = name
        self.log_path = Path(tempfile.mkstemp(prefix=f"{name}-", suffix=".log")[1])
        self.proc: subprocess.Popen | None = None
        for _attempt in range(3):
            port = free_port()
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(
                    [sys.executable, "-m", "session_service", "serve", "--host", "127.0.0.1", "--port", str(port)],
                    cwd=str(REPO_ROOT),
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            self.url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and self.proc.poll() is None:
                if _answers(self.url + "/healthz"):
                    return
                time.sleep(0.05)
            self.stop()
        raise RuntimeError(f"{name} did not start:\n{self.output()}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def _native(request: pytest.FixtureRequest, env: dict[str, str], name: str) -> Iterator[NativeProcess]:
    proc = NativeProcess(env, name)
    try:
        yield proc
    finally:
        proc.stop()
        if getattr(request.session, "testsfailed", 0):
            print(f"\n[native] {name} log: {proc.log_path}", file=sys.stderr)


@pytest.fixture(scope="session")
def native_process(request: pytest.FixtureRequest, seeded: None, pg_dsn: str) -> Iterator[NativeProcess]:
    yield from _native(request, {"AGNO_PG_DSN": pg_dsn, "AGNO_DEFAULT_DB_ID": "main-db"}, "native")


@pytest.fixture(scope="session")
def native_url(native_process: NativeProcess) -> str:
    return native_process.url


@pytest.fixture(scope="session")
def native_multi_url(
    request: pytest.FixtureRequest, seeded: None, seeded_second: None, pg_dsn: str, second_pg_dsn: str
) -> Iterator[str]:
    dsn_map = json.dumps({"main-db": pg_dsn, "second-db": second_pg_dsn})
    for proc in _native(request, {"AGNO_SESSION_DSN_MAP": dsn_map}, "native-multi"):
        yield proc.url


@pytest.fixture(scope="session")
def native_secured_url(request: pytest.FixtureRequest, seeded: None, pg_dsn: str) -> Iterator[str]:
    env = {"AGNO_PG_DSN": pg_dsn, "AGNO_DEFAULT_DB_ID": "main-db", "OS_SECURITY_KEY": SECURITY_KEY}
    for proc in _native(request, env, "native-secured"):
        yield proc.url
