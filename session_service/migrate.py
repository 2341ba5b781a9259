"""`agentos-session migrate --indexes [--dry-run]`: optional indexes for the native read paths.

agno 3.1.10 indexes the sessions table on `created_at` and `session_type` only. Two list queries
then read the whole table on every request, and get slower as it grows:

* `GET /sessions?sort_by=updated_at` orders by `coalesce(updated_at, created_at)` (agno's
  fallback for rows never updated): a sequential scan and a sort of every row for 20 of them.
* `GET /sessions?user_id=...` filters on `user_id`, which no index covers (the page's count and
  the page itself both scan the table).

The indexes below make both an index scan. They are never created silently: the service does
not run this, an operator does, and `--dry-run` prints the statements without running them.
Each is `CREATE INDEX CONCURRENTLY IF NOT EXISTS`: no lock that blocks agno's writes while it
builds, and a second run is a no-op. agno tolerates extra indexes on its tables (it creates
missing tables and indexes of its own, never drops others); tests/test_migrate.py runs the real
AgentOS on the migrated tables. A build that failed half-way (an INVALID index, which
`IF NOT EXISTS` would keep) is dropped and built again.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from dataclasses import dataclass

import asyncpg

from .config import ConfigError, Database, settings_from_env
from .store import quote_ident

log = logging.getLogger("session_service")

PREFIX = "agentos_session_idx_"


@dataclass(frozen=True)
class Index:
    name: str
    table: str  # schema-qualified, quoted
    schema: str
    definition: str  # what goes inside `ON table (...)`
    why: str

    def create(self) -> str:
        return f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {quote_ident(self.name)} ON {self.table} ({self.definition})"

    def drop(self) -> str:
        return f"DROP INDEX CONCURRENTLY IF EXISTS {quote_ident(self.schema)}.{quote_ident(self.name)}"


def indexes_for(db: Database) -> list[Index]:
    """The optional indexes of one database's sessions table (names under 63 bytes stay whole)."""
    t = db.tables
    table = f"{quote_ident(t.schema)}.{quote_ident(t.sessions)}"
    return [
        Index(
            f"{PREFIX}{t.sessions}_updated_sort",
            table,
            t.schema,
            "(coalesce(updated_at, created_at))",
            "GET /sessions?sort_by=updated_at: an index scan for the page instead of sorting every row",
        ),
        Index(
            f"{PREFIX}{t.sessions}_user_created",
            table,
            t.schema,
            "user_id, created_at",
            "GET /sessions?user_id=...: the user's rows only, for the count and the (created_at) page",
        ),
    ]


async def _state(conn: asyncpg.Connection, index: Index) -> str:
    """`missing`, `valid` or `invalid` (a concurrent build that failed)."""
    valid = await conn.fetchval(
        "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
        index.schema,
        index.name[:63],
    )
    return "missing" if valid is None else ("valid" if valid else "invalid")


async def migrate_indexes(db: Database, *, dry_run: bool, out: list[str]) -> int:
    """Create the missing indexes of `db` (rebuild invalid ones); the statements run (or, with
    `dry_run`, that would run) are appended to `out`. Returns how many were (or would be) run."""
    conn = await asyncpg.connect(db.dsn)
    try:
        done = 0
        for index in indexes_for(db):
            state = await _state(conn, index)
            statements = {"missing": [index.create()], "invalid": [index.drop(), index.create()]}.get(state, [])
            for sql in statements:
                out.append(sql)
                if not dry_run:
                    await conn.execute(sql)  # CONCURRENTLY: outside any transaction, one statement
                done += 1
            if state == "valid":
                out.append(f"-- {index.name} exists")
        return done
    finally:
        await conn.close()


def run_migrate(args: argparse.Namespace) -> int:
    if not args.indexes:
        print("nothing to do: pass --indexes (the only migration there is)", file=sys.stderr)
        return 2
    try:
        settings = settings_from_env()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    seen: set[tuple[str, str, str]] = set()
    for db in settings.databases:
        key = (db.dsn, db.tables.schema, db.tables.sessions)
        if key in seen:
            continue
        seen.add(key)
        out: list[str] = []
        n = asyncio.run(migrate_indexes(db, dry_run=args.dry_run, out=out))
        verb = "would run" if args.dry_run else "ran"
        print(f"-- db {db.db_id}: {verb} {n} statement(s)")
        for line in out:
            print(line if line.startswith("--") else line + ";")
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "migrate",
        help="optional migrations (indexes for the native list queries); never run by the service",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--indexes", action="store_true", help="create the optional indexes (CONCURRENTLY, IF NOT EXISTS)")
    p.add_argument("--dry-run", action="store_true", help="print the statements, run none")
    p.set_defaults(run=run_migrate)
