"""Shared fixtures: the legacy side (real agno AgentOS, tests/legacy) and the native side.

Both sides are real processes on 127.0.0.1 over one real Postgres, so a differential test sends
the same bytes to both and compares the bytes that come back. The processes are started by the
`harness` package (`harness.services`); these fixtures give them their scope and clean-up.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

pytest.register_assert_rewrite("tests.legacy.fixtures")

from harness.processes import Process  # noqa: E402
from harness.services import start_native  # noqa: E402
from tests.legacy.fixtures import SECURITY_KEY, serving  # noqa: E402

pytest_plugins = ["tests.legacy.fixtures"]

NativeProcess = start_native  # the name older tests import


@pytest.fixture(scope="session")
def native_process(request: pytest.FixtureRequest, seeded: None, pg_dsn: str) -> Iterator[Process]:
    env = {"AGNO_PG_DSN": pg_dsn, "AGNO_DEFAULT_DB_ID": "main-db"}
    yield from serving(request, start_native(env, "native"))


@pytest.fixture(scope="session")
def native_url(native_process: Process) -> str:
    return native_process.url


@pytest.fixture(scope="session")
def native_multi_url(
    request: pytest.FixtureRequest, seeded: None, seeded_second: None, pg_dsn: str, second_pg_dsn: str
) -> Iterator[str]:
    dsn_map = json.dumps({"main-db": pg_dsn, "second-db": second_pg_dsn})
    for proc in serving(request, start_native({"AGNO_SESSION_DSN_MAP": dsn_map}, "native-multi")):
        yield proc.url


@pytest.fixture(scope="session")
def native_secured_url(request: pytest.FixtureRequest, seeded: None, pg_dsn: str) -> Iterator[str]:
    env = {"AGNO_PG_DSN": pg_dsn, "AGNO_DEFAULT_DB_ID": "main-db", "OS_SECURITY_KEY": SECURITY_KEY}
    for proc in serving(request, start_native(env, "native-secured")):
        yield proc.url
