"""`agentos-session export` and `agentos-session import`: sessions with their runs and summary
between databases, as JSON Lines (issue 14).

One line is one session: its row as stored (the sessions table's columns, JSON decoded) and
`runs`, its runs in agno's stored form (`RunOutput.to_dict()`) in `run_index` order, a 2.x
`runs` blob merged in as agno merges it. Nothing is rendered on the way, so nothing is lost; the
row keeps its `created_at` and `updated_at`.

Import goes through the code path of `POST /sessions` with `runs` (session_service.history's
validation and `Store.insert_session_with_runs`, not HTTP): each session and all its runs in one
transaction. It is idempotent and so resumable: an id already present is skipped, or with
`--replace` deleted and written again in the same transaction; an import that was interrupted
is finished by running it again. A line that does not validate is reported and skipped (the
exit status is then 1); the others are still imported.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import asyncpg

from . import history, render
from .config import ConfigError, Tables, settings_from_env
from .store import SessionQuery, Store, init_connection
from .validation import RequestInvalid

SESSION_TYPES = ("agent", "team", "workflow")
# The sessions table's columns an export line carries (the 2.x `runs` blob is merged into `runs`).
ROW_COLUMNS = (
    "session_id",
    "session_type",
    "agent_id",
    "team_id",
    "workflow_id",
    "user_id",
    "session_data",
    "agent_data",
    "team_data",
    "workflow_data",
    "metadata",
    "summary",
    "created_at",
    "updated_at",
)
PAGE = 500  # sessions per export query and per import batch


# --------------------------------------------------------------------------------------------
# Pure parts: a line out, a line in
# --------------------------------------------------------------------------------------------


def export_line(row: dict[str, Any], table_runs: list[Any]) -> dict[str, Any]:
    """One session as an export line: its columns and its runs (legacy blob merged)."""
    line = {c: row.get(c) for c in ROW_COLUMNS if c in row}
    line["runs"] = render.merge_runs(table_runs, row.get("runs"))
    return line


class LineInvalid(ValueError):
    """An import line that cannot be imported; `str()` says where and why."""


@dataclass(frozen=True)
class Prepared:
    """An import line validated: the session row's values and its runs-table rows."""

    session_id: str
    values: dict[str, Any]
    rows: list[dict[str, Any]]


def prepare(line: Any, number: int, now: int) -> Prepared:
    """Validate one decoded line with the create path's rules and build what is written."""
    if not isinstance(line, dict):
        raise LineInvalid(f"line {number}: not a JSON object")
    session_id, session_type = line.get("session_id"), line.get("session_type")
    if not isinstance(session_id, str) or not session_id:
        raise LineInvalid(f"line {number}: session_id must be a non-empty string")
    if session_type not in SESSION_TYPES:
        raise LineInvalid(f"line {number}: session_type must be one of {', '.join(SESSION_TYPES)}")
    loc = ("line", number)
    try:
        runs = history.validate_runs(line.get("runs") or [], session_type, session_id, (*loc, "runs"))
        summary = line.get("summary")
        if summary is not None and session_type != "workflow":
            summary = history.validate_summary(summary, session_type, (*loc, "summary"))
    except RequestInvalid as exc:
        raise LineInvalid(f"line {number}: {json.dumps(exc.errors, ensure_ascii=False, default=str)}") from None
    created_at = line.get("created_at")
    if not isinstance(created_at, int):
        created_at = now
    values: dict[str, Any] = {"session_id": session_id, "session_type": session_type}
    for column in ROW_COLUMNS[2:]:
        value = summary if column == "summary" else line.get(column)
        if value is not None:  # an absent JSON column stays SQL NULL, as agno leaves it
            values[column] = value
    values["created_at"] = created_at
    return Prepared(session_id, values, history.run_rows(session_id, line.get("user_id"), runs, now))


# --------------------------------------------------------------------------------------------
# Progress and the summary line
# --------------------------------------------------------------------------------------------


@dataclass
class Progress:
    """A plain stderr counter (no terminal control beyond `\\r`), and the final summary line."""

    verb: str
    out: IO[str] = field(default_factory=lambda: sys.stderr)
    counts: dict[str, int] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    last: float = 0.0

    def count(self, what: str, n: int = 1) -> None:
        self.counts[what] = self.counts.get(what, 0) + n
        now = time.monotonic()
        if now - self.last >= 0.5:
            self.last = now
            self.out.write(f"\r{self.verb}: {self._counts()}")
            self.out.flush()

    def _counts(self) -> str:
        return ", ".join(f"{n} {what}" for what, n in self.counts.items())

    def summary(self) -> str:
        elapsed = time.monotonic() - self.started
        sessions = sum(n for what, n in self.counts.items() if what != "runs")
        rate = sessions / elapsed if elapsed > 0 else 0.0
        return f"{self.verb}: {self._counts() or 'nothing'} in {elapsed:.1f} s ({rate:.0f} sessions/s)"

    def done(self) -> None:
        self.out.write(("\r" if self.last else "") + self.summary() + "\n")
        self.out.flush()


# --------------------------------------------------------------------------------------------
# I/O
# --------------------------------------------------------------------------------------------


async def _store(conn: asyncpg.Connection, tables: Tables, create: bool) -> Store:
    if create:
        await Store.ensure_tables(conn, tables)
    columns, extra = await Store.introspect(conn, tables)
    return Store(tables, columns, extra)


async def _connect_with_codecs(dsn: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(dsn)
    await init_connection(conn)
    return conn


async def export_lines(dsn: str, tables: Tables, q: SessionQuery) -> AsyncIterator[dict[str, Any]]:
    """Every session matching `q`, in session_id order, as export lines."""
    conn = await _connect_with_codecs(dsn)
    try:
        store = await _store(conn, tables, create=False)
        after: str | None = None
        while True:
            rows = await store.sessions_after(conn, q, after, PAGE)
            if not rows:
                return
            runs = await store.runs_of_sessions(conn, [r["session_id"] for r in rows])
            for row in rows:
                yield export_line(row, runs.get(row["session_id"], []))
            after = rows[-1]["session_id"]
    finally:
        await conn.close()


async def export(dsn: str, tables: Tables, q: SessionQuery, out: IO[str], progress: Progress) -> None:
    async for line in export_lines(dsn, tables, q):
        out.write(json.dumps(line, ensure_ascii=False) + "\n")
        progress.count("sessions")
        progress.count("runs", len(line["runs"]))


def _batches(lines: Iterable[str], size: int) -> Iterator[list[tuple[int, str]]]:
    batch: list[tuple[int, str]] = []
    for number, text in enumerate(lines, 1):
        if text.strip():
            batch.append((number, text))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


async def import_(dsn: str, tables: Tables, lines: Iterable[str], progress: Progress, *, replace: bool = False) -> int:
    """Import every line; returns the number of lines that failed (reported on stderr)."""
    conn = await _connect_with_codecs(dsn)
    failed = 0
    try:
        store = await _store(conn, tables, create=True)
        for batch in _batches(lines, PAGE):
            now = int(time.time())
            decoded: list[tuple[int, Any]] = []
            for number, text in batch:
                try:
                    decoded.append((number, json.loads(text)))
                except (ValueError, RecursionError) as exc:
                    failed += 1
                    _report(progress, f"line {number}: invalid JSON ({exc})")
            ids = [line.get("session_id") for _, line in decoded if isinstance(line, dict)]
            present = await store.existing_session_ids(conn, [i for i in ids if isinstance(i, str)])
            prepared: list[Prepared] = []
            for number, line in decoded:
                if not replace and isinstance(line, dict) and line.get("session_id") in present:
                    progress.count("skipped")  # checked before validating: a resumed import is cheap
                    continue
                try:
                    prepared.append(prepare(line, number, now))
                except LineInvalid as exc:
                    failed += 1
                    _report(progress, exc)
            for p in prepared:
                exists = p.session_id in present
                try:
                    row = await store.insert_session_with_runs(conn, p.values, p.rows, replace=exists)
                except asyncpg.UniqueViolationError as exc:
                    failed += 1
                    _report(progress, f"session {p.session_id}: a run id is held by another session ({exc.detail})")
                    continue
                if row is None:  # written by someone else since the batch was checked
                    progress.count("skipped")
                    continue
                progress.count("replaced" if exists else "imported")
                progress.count("runs", len(p.rows))
        return failed
    finally:
        await conn.close()


def _report(progress: Progress, message: object) -> None:
    progress.out.write(f"\n{message}\n")
    progress.count("failed")


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def _target(args: argparse.Namespace) -> tuple[str, Tables]:
    """`--dsn` (agno's default tables, or --schema), else `--db-id` from the service's env."""
    if args.dsn:
        return args.dsn, Tables.from_names(args.schema, None, None)
    settings = settings_from_env()
    db_id = args.db_id or settings.default_db_id
    database = settings.database_for(db_id)
    if database is None:
        raise ConfigError(f"no database with id {db_id!r} in the service's configuration")
    return database.dsn, database.tables


def _run_export(args: argparse.Namespace, stdout: IO[str] | None = None, stderr: IO[str] | None = None) -> int:
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    try:
        dsn, tables = _target(args)
    except ConfigError as exc:
        print(f"export: {exc}", file=stderr)
        return 2
    q = SessionQuery(
        session_type=args.type, component_id=args.component_id, user_id=args.user_id, session_name=args.name
    )
    progress = Progress("export", stderr)
    out = stdout if args.output == "-" else open(args.output, "w", encoding="utf-8")  # noqa: SIM115
    try:
        asyncio.run(export(dsn, tables, q, out, progress))
    finally:
        if out is not stdout:
            out.close()
    progress.done()
    return 0


def _run_import(args: argparse.Namespace, stdout: IO[str] | None = None, stderr: IO[str] | None = None) -> int:
    stderr = stderr or sys.stderr
    try:
        dsn, tables = _target(args)
    except ConfigError as exc:
        print(f"import: {exc}", file=stderr)
        return 2
    progress = Progress("import", stderr)
    source = sys.stdin if args.input == "-" else open(args.input, encoding="utf-8")  # noqa: SIM115
    try:
        failed = asyncio.run(import_(dsn, tables, source, progress, replace=args.replace))
    finally:
        if source is not sys.stdin:
            source.close()
    progress.done()
    return 1 if failed else 0


def _database_options(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--dsn", help="Postgres DSN (postgresql://...); agno's default table names")
    where.add_argument(
        "--db-id",
        help="a db_id of the service's configuration (AGNO_PG_DSN / AGNO_SESSION_DSN_MAP; default: its default)",
    )
    parser.add_argument("--schema", default=None, help="with --dsn: the schema of agno's tables (default ai)")


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    exp = sub.add_parser(
        "export", help="export sessions with their runs to JSON Lines", description=export_lines.__doc__
    )
    _database_options(exp)
    exp.add_argument("--type", choices=SESSION_TYPES, default=None, help="only sessions of this type")
    exp.add_argument("--user-id", default=None, help="only this user's sessions")
    exp.add_argument("--component-id", default=None, help="only sessions of this agent, team or workflow id")
    exp.add_argument("--name", default=None, help="only sessions whose stored name contains this (ILIKE)")
    exp.add_argument("-o", "--output", default="-", help="file to write (default stdout)")
    exp.set_defaults(run=_run_export)
    imp = sub.add_parser("import", help="import sessions with their runs from JSON Lines", description=import_.__doc__)
    _database_options(imp)
    imp.add_argument("input", nargs="?", default="-", help="file to read (default stdin)")
    imp.add_argument("--replace", action="store_true", help="replace a session already present (default: skip it)")
    imp.set_defaults(run=_run_import)
