"""All SQL of the service, against agno's own tables. Parameters are always bound.

Reads return rows as plain dicts with JSONB decoded by `json.loads` (which keeps Postgres's
canonical key order, the order agno prints). Writes send JSON as text cast to `jsonb`, so that
a Python `None` can be written as JSON `null` exactly where agno (SQLAlchemy's JSONB type)
writes it, and as SQL NULL where agno leaves the column out.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from .config import Tables
from .validation import sanitize_string, sanitize_strings, storable

# Where agno's JSON columns come from: the 2.x `runs` blob is read only to be merged.
JSON_COLUMNS = ("session_data", "agent_data", "team_data", "workflow_data", "metadata", "summary", "runs")


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _text(value: Any) -> str:
    """A Python value as JSON text for a `$n::text::jsonb` parameter (None becomes JSON null)."""
    return json.dumps(value, ensure_ascii=False)


# 19 digits in a row: the shortest integer orjson could read otherwise than `json.loads` (2**63
# has 19 digits; every integer up to 18 digits is an int to both). Found by a byte table (digits
# to "0", all else to " ") and a substring search, both in C: a regex over the text costs more
# than the parse it guards.
_DIGIT_MASK = bytes(48 if 48 <= b <= 57 else 32 for b in range(256))
_LONG_DIGITS = b"0" * 19


def _long_digit_run(text: str) -> bool:
    return _LONG_DIGITS in text.encode().translate(_DIGIT_MASK)


def decode_jsonb(text: str) -> Any:
    """JSONB text as Python values, equal to `json.loads(text)` (tests/test_jsonb_decode.py), in
    a fraction of its time: decoding JSONB was the largest pure-Python cost of the reads.

    orjson gives the same values for what Postgres prints for jsonb (keys in stored order and
    unique, numbers as plain decimals, strings valid UTF-8), except integers past 64 bits, which
    it reads as floats: text with 19 digits in a row (any integer past 64 bits has them; so do
    some strings and long decimals, which merely take the slow path) goes to `json.loads`, as
    does what orjson refuses (nesting past its limit), so those keep the stdlib's answer too."""
    if not _long_digit_run(text):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


async def init_connection(conn: asyncpg.Connection) -> None:
    """Decode jsonb with `decode_jsonb`, json (text kept as sent: duplicate keys, exponents)
    with the stdlib parser: key order and float values stay agno's."""
    await conn.set_type_codec("jsonb", schema="pg_catalog", encoder=_text, decoder=decode_jsonb, format="text")
    await conn.set_type_codec("json", schema="pg_catalog", encoder=_text, decoder=json.loads, format="text")


# Extra columns of the list statement, named so no sessions column can clash with them.
FIRST_RUN = "agentos_session_first_run"
FIRST_RUN_ID = "agentos_session_first_run_id"
# What `session_name` reads of a first run, cut down in SQL so a list page does not move and
# decode whole runs (tool calls, metrics, every message) to derive 20 names: the member-run test
# (`agent_id`), `input`, and of `messages` the user ones. Anything `render.first_run_names` would
# not accept stays as stored (a run or a message that is not an object), so those sessions still
# take the full derivation.
NAME_INPUTS = (
    "CASE WHEN jsonb_typeof(run_data) = 'object' THEN jsonb_build_object("
    "'agent_id', run_data -> 'agent_id', 'input', run_data -> 'input', 'messages', "
    "CASE WHEN jsonb_typeof(run_data -> 'messages') = 'array' THEN "
    "(SELECT coalesce(jsonb_agg(m ORDER BY i), '[]'::jsonb) "
    "FROM jsonb_array_elements(run_data -> 'messages') WITH ORDINALITY AS e(m, i) "
    "WHERE jsonb_typeof(m) <> 'object' OR m ->> 'role' = 'user') "
    "ELSE run_data -> 'messages' END) ELSE run_data END"
)


# A team session's name comes from its first run that is not a member run (`agent_id` set):
# the lateral lookup skips the runs that certainly are (a non-empty string `agent_id`), so the
# name of a team whose first run is a member's is decided by one run too, not by loading them
# all. Any other `agent_id` (a number, true, ...) is not skipped: `render.first_run_names` then
# says the one run does not decide, and that session takes the full derivation.
NOT_A_MEMBER_RUN = (
    "(page.session_type = 'team' AND jsonb_typeof(run_data -> 'agent_id') = 'string' "
    "AND run_data ->> 'agent_id' <> '') IS NOT TRUE"
)


async def keep_connection_state(conn: asyncpg.Connection) -> None:
    """For `asyncpg.create_pool(reset=keep_connection_state)`: release a connection without the
    default reset statement (`pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`), one
    round trip per request. Safe here: the service leaves no session state on a connection (no
    LISTEN, cursor, SET or session-level advisory lock; the DDL lock is transaction-scoped), and
    asyncpg still rolls back a transaction left open before it calls this (session_service/app.py
    builds the pools with it; docs/benchmarks.md, "Optimisation", has what it saves)."""


@dataclass(frozen=True)
class ListPage:
    """A `GET /sessions` page: the rows, the filtered total, and for each listed session with
    no stored name that has runs, its first run (run_index, created_at order)."""

    rows: list[dict[str, Any]]
    total: int
    first_runs: dict[str, Any]


def _list_page(records: list[asyncpg.Record]) -> ListPage:
    """Split the joined rows back into agno's two answers (an empty page is one row of NULLs)."""
    total = int(records[0]["total"]) if records else 0
    rows: list[dict[str, Any]] = []
    first_runs: dict[str, Any] = {}
    for record in records:
        row = dict(record)
        del row["total"]
        run_id, run = row.pop(FIRST_RUN_ID), row.pop(FIRST_RUN)
        if row["session_id"] is None:  # the page side of the join was empty (session_id is NOT NULL)
            continue
        if run_id is not None:
            first_runs[row["session_id"]] = run
        rows.append(row)
    return ListPage(rows, total, first_runs)


@dataclass(frozen=True)
class SessionQuery:
    """The filters of `GET /sessions` (already validated)."""

    session_type: str | None = None
    component_id: str | None = None
    user_id: str | None = None
    session_name: str | None = None
    limit: int = 20
    page: int = 1
    sort_by: str | None = "created_at"
    sort_order: str = "desc"


class Store:
    """The SQL for one database's tables. Stateless apart from the names and known columns."""

    def __init__(self, tables: Tables, session_columns: frozenset[str], extra_tables: frozenset[str] = frozenset()):
        self.tables = tables
        self.session_columns = session_columns
        schema = quote_ident(tables.schema)
        self.sessions = f"{schema}.{quote_ident(tables.sessions)}"
        self.runs = f"{schema}.{quote_ident(tables.runs)}"
        # agno also cleans these on delete when they exist (external-agent transcripts, compactions).
        self.transcripts = f"{schema}.agno_transcripts" if "agno_transcripts" in extra_tables else None
        self.compactions = f"{schema}.agno_compactions" if "agno_compactions" in extra_tables else None

    # ---- schema ------------------------------------------------------------------------------

    @staticmethod
    async def introspect(conn: asyncpg.Connection, tables: Tables) -> tuple[frozenset[str], frozenset[str]]:
        """The sessions table's real columns (for `sort_by`) and which optional tables exist."""
        columns = await conn.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2",
            tables.schema,
            tables.sessions,
        )
        present = await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_name = ANY($2::text[])",
            tables.schema,
            ["agno_transcripts", "agno_compactions"],
        )
        return frozenset(r["column_name"] for r in columns), frozenset(r["table_name"] for r in present)

    @staticmethod
    async def table_exists(conn: asyncpg.Connection, schema: str, table: str) -> bool:
        return bool(
            await conn.fetchval(
                "SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2", schema, table
            )
        )

    @staticmethod
    async def ensure_tables(conn: asyncpg.Connection, tables: Tables) -> list[str]:
        """Create agno's sessions/runs tables (agno's DDL) where missing. Never alters a table."""
        created = []
        s, st, rt = tables.schema, tables.sessions, tables.runs
        q_schema = quote_ident(s)
        sessions = f"{q_schema}.{quote_ident(st)}"
        runs = f"{q_schema}.{quote_ident(rt)}"
        versions = f"{q_schema}.agno_schema_versions"
        async with conn.transaction():
            # One creator at a time across processes sharing the database.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('agentos_session_ddl'))")
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {q_schema}")
            if not await Store.table_exists(conn, s, st):
                await conn.execute(
                    f"""CREATE TABLE {sessions} (
                        session_id VARCHAR NOT NULL, session_type VARCHAR NOT NULL,
                        agent_id VARCHAR, team_id VARCHAR, workflow_id VARCHAR, user_id VARCHAR,
                        session_data JSONB, agent_data JSONB, team_data JSONB, workflow_data JSONB,
                        metadata JSONB, summary JSONB, created_at BIGINT NOT NULL, updated_at BIGINT,
                        CONSTRAINT {quote_ident(st + "_pkey")} PRIMARY KEY (session_id))"""
                )
                for col in ("created_at", "session_type"):
                    await conn.execute(f"CREATE INDEX {quote_ident(f'idx_{st}_{col}')} ON {sessions} ({col})")
                created.append(st)
            if not await Store.table_exists(conn, s, rt):
                await conn.execute(
                    f"""CREATE TABLE {runs} (
                        run_id VARCHAR NOT NULL,
                        session_id VARCHAR NOT NULL, run_type VARCHAR NOT NULL,
                        agent_id VARCHAR, team_id VARCHAR, workflow_id VARCHAR, user_id VARCHAR,
                        parent_run_id VARCHAR, status VARCHAR, run_index BIGINT, run_data JSONB NOT NULL,
                        created_at BIGINT NOT NULL, updated_at BIGINT,
                        CONSTRAINT {quote_ident(rt + "_pkey")} PRIMARY KEY (run_id),
                        CONSTRAINT {quote_ident(rt + "_session_id_fkey")} FOREIGN KEY (session_id)
                            REFERENCES {sessions} (session_id) ON DELETE CASCADE)"""
                )
                for col in (
                    "agent_id",
                    "created_at",
                    "run_type",
                    "session_id",
                    "status",
                    "team_id",
                    "user_id",
                    "workflow_id",
                ):
                    await conn.execute(f"CREATE INDEX {quote_ident(f'idx_{rt}_{col}')} ON {runs} ({col})")
                await conn.execute(
                    f"CREATE INDEX {quote_ident(f'idx_{rt}_session_id_run_index')} ON {runs} (session_id, run_index)"
                )
                created.append(rt)
            if created:
                if not await Store.table_exists(conn, s, "agno_schema_versions"):
                    await conn.execute(
                        f"""CREATE TABLE {versions} (table_name VARCHAR NOT NULL, version VARCHAR NOT NULL,
                            created_at VARCHAR NOT NULL, updated_at VARCHAR,
                            CONSTRAINT agno_schema_versions_pkey PRIMARY KEY (table_name))"""
                    )
                    await conn.execute(f"CREATE INDEX idx_agno_schema_versions_created_at ON {versions} (created_at)")
                now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
                for name in created:
                    await conn.execute(
                        f"INSERT INTO {versions} (table_name, version, created_at, updated_at) "
                        "VALUES ($1, '3.0.0', $2, $2) ON CONFLICT (table_name) DO NOTHING",
                        name,
                        now,
                    )
        return created

    # ---- reads -------------------------------------------------------------------------------

    def _list_where(self, q: SessionQuery) -> tuple[str, list[Any]]:
        clauses, args = [], []

        def bind(value: Any) -> str:
            args.append(value)
            return f"${len(args)}"

        if q.user_id is not None:
            clauses.append(f"user_id = {bind(q.user_id)}")
        if q.component_id is not None:
            column = {"agent": "agent_id", "team": "team_id", "workflow": "workflow_id"}.get(q.session_type or "")
            if column:
                clauses.append(f"{column} = {bind(q.component_id)}")
            else:
                p = bind(q.component_id)
                clauses.append(f"(agent_id = {p} OR team_id = {p} OR workflow_id = {p})")
        if q.session_name is not None:
            # agno does not escape % and _ in the value: they stay wildcards, as there.
            clauses.append(f"coalesce(session_data ->> 'session_name', '') ILIKE {bind('%' + q.session_name + '%')}")
        if q.session_type is not None:
            clauses.append(f"session_type = {bind(q.session_type)}")
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", args

    def _order_by(self, q: SessionQuery) -> str:
        # agno: an unknown column means no ORDER BY at all; `updated_at` falls back to created_at.
        if q.sort_by is None or q.sort_by not in self.session_columns:
            return ""
        column = "coalesce(updated_at, created_at)" if q.sort_by == "updated_at" else quote_ident(q.sort_by)
        return f" ORDER BY {column} {'ASC' if q.sort_order == 'asc' else 'DESC'}"

    async def list_sessions(self, conn: asyncpg.Connection, q: SessionQuery) -> ListPage:
        """One page of session rows, the filtered total and each unnamed row's first run, in one
        round trip: agno's two statements (the count and the page) as the two sides of a join,
        and the first run of every listed session without a stored name (what `session_name`
        is derived from; for a team, its first run that is not a member run) as a lateral lookup
        on the runs' (session_id, run_index) index."""
        if not all(storable(v) for v in (q.user_id, q.component_id, q.session_name) if v is not None):
            return ListPage([], 0, {})  # a filter no stored text can equal or contain: agno answers 500 here
        where, args = self._list_where(q)
        n = len(args)
        # A LEFT JOIN LATERAL is a nested loop over the page: rows come back in the page's order.
        rows = await conn.fetch(
            f"SELECT filtered.total, page.*, first_run.run_id AS {FIRST_RUN_ID}, first_run.run_data AS {FIRST_RUN} "
            f"FROM (SELECT count(*) AS total FROM {self.sessions}{where}) AS filtered "
            f"LEFT JOIN LATERAL (SELECT * FROM {self.sessions}{where}{self._order_by(q)} "
            f"LIMIT ${n + 1} OFFSET ${n + 2}) AS page ON true "
            f"LEFT JOIN LATERAL (SELECT run_id, {NAME_INPUTS} AS run_data FROM {self.runs} "
            "WHERE session_id = page.session_id "
            "AND coalesce(page.session_data -> 'session_name', 'null'::jsonb) = 'null'::jsonb "
            f"AND {NOT_A_MEMBER_RUN} "
            "ORDER BY run_index ASC, created_at ASC LIMIT 1) AS first_run ON true",
            *args,
            q.limit,
            (q.page - 1) * q.limit,
        )
        return _list_page(rows)

    async def runs_of_sessions(self, conn: asyncpg.Connection, session_ids: Sequence[str]) -> dict[str, list[Any]]:
        """Runs of many sessions in one query (agno's list order: run_index, created_at)."""
        if not session_ids:
            return {}
        rows = await conn.fetch(
            f"SELECT session_id, run_data FROM {self.runs} WHERE session_id = ANY($1::varchar[]) "
            "ORDER BY run_index ASC, created_at ASC",
            list(session_ids),
        )
        out: dict[str, list[Any]] = {}
        for r in rows:
            out.setdefault(r["session_id"], []).append(r["run_data"])
        return out

    async def runs_of_session(self, conn: asyncpg.Connection, session_id: str) -> list[Any]:
        rows = await conn.fetch(
            f"SELECT run_data FROM {self.runs} WHERE session_id = $1 ORDER BY run_index ASC, created_at ASC, run_id ASC",
            session_id,
        )
        return [r["run_data"] for r in rows]

    async def get_session(
        self, conn: asyncpg.Connection, session_id: str, user_id: str | None, *, for_update: bool = False
    ) -> dict[str, Any] | None:
        """`SELECT * ... WHERE session_id [AND user_id]`; agno never filters on type here."""
        if not storable(session_id) or (user_id is not None and not storable(user_id)):
            return None  # no row can have it (agno's query fails: a 500; see known differences)
        sql = f"SELECT * FROM {self.sessions} WHERE session_id = $1"
        args: list[Any] = [session_id]
        if user_id is not None:
            sql += " AND user_id = $2"
            args.append(user_id)
        if for_update:
            sql += " FOR UPDATE"
        row = await conn.fetchrow(sql, *args)
        return dict(row) if row is not None else None

    async def session_with_runs(
        self, conn: asyncpg.Connection, session_id: str, user_id: str | None
    ) -> tuple[dict[str, Any] | None, list[Any]]:
        """The session row, then its runs (none looked up when there is no row). Two statements
        on one connection: folding the runs into the row's statement (an `ARRAY(...)` or
        `jsonb_agg` column) measured slower, as Postgres builds and quotes one big value
        (docs/benchmarks.md, "Optimisation")."""
        row = await self.get_session(conn, session_id, user_id)
        if row is None:
            return None, []
        return row, await self.runs_of_session(conn, session_id)

    async def session_with_run(
        self, conn: asyncpg.Connection, session_id: str, user_id: str | None, run_id: str
    ) -> tuple[dict[str, Any] | None, bool, Any]:
        """The session row and its run `run_id` by primary key, in one round trip: (row, whether
        the runs table has that run for the session, its run_data)."""
        if not storable(session_id) or (user_id is not None and not storable(user_id)):
            return None, False, None
        if not storable(run_id):
            row = await self.get_session(conn, session_id, user_id)
            return row, False, None
        sql = (
            f"SELECT s.*, r.run_id AS {FIRST_RUN_ID}, r.run_data AS {FIRST_RUN} FROM {self.sessions} AS s "
            f"LEFT JOIN {self.runs} AS r ON r.run_id = $2 AND r.session_id = s.session_id WHERE s.session_id = $1"
        )
        args: list[Any] = [session_id, run_id]
        if user_id is not None:
            sql += " AND s.user_id = $3"
            args.append(user_id)
        record = await conn.fetchrow(sql, *args)
        if record is None:
            return None, False, None
        row = dict(record)
        found, run = row.pop(FIRST_RUN_ID) is not None, row.pop(FIRST_RUN)
        return row, found, run

    async def session_exists(self, conn: asyncpg.Connection, session_id: str) -> bool:
        if not storable(session_id):
            return False
        return bool(await conn.fetchval(f"SELECT 1 FROM {self.sessions} WHERE session_id = $1", session_id))

    # ---- writes ------------------------------------------------------------------------------

    async def insert_session(self, conn: asyncpg.Connection, values: dict[str, Any]) -> dict[str, Any] | None:
        """Insert a new session row; None when the id is taken (checked atomically, no overwrite)."""
        columns, params, args = self._values(values)
        row = await conn.fetchrow(
            f"INSERT INTO {self.sessions} ({', '.join(columns)}) VALUES ({', '.join(params)}) "
            "ON CONFLICT (session_id) DO NOTHING RETURNING *",
            *args,
        )
        return dict(row) if row is not None else None

    async def upsert_session(self, conn: asyncpg.Connection, values: dict[str, Any], now: int) -> dict[str, Any] | None:
        """agno's `upsert_session`: insert, or update everything but type and created_at, bumping
        `updated_at`, guarded by the owner check. None when the guard refuses."""
        columns, params, args = self._values(values)
        updates = [
            f"{quote_ident(c)} = EXCLUDED.{quote_ident(c)}"
            for c in values
            if c not in ("session_id", "session_type", "created_at", "updated_at")
        ]
        args.append(now)
        updates.append(f"updated_at = ${len(args)}")
        row = await conn.fetchrow(
            f"INSERT INTO {self.sessions} AS existing ({', '.join(columns)}) VALUES ({', '.join(params)}) "
            f"ON CONFLICT (session_id) DO UPDATE SET {', '.join(updates)} "
            "WHERE existing.user_id = EXCLUDED.user_id OR existing.user_id IS NULL RETURNING *",
            *args,
        )
        return dict(row) if row is not None else None

    def _values(self, values: dict[str, Any]) -> tuple[list[str], list[str], list[Any]]:
        columns, params, args = [], [], []
        for column, value in values.items():
            columns.append(quote_ident(column))
            if column in JSON_COLUMNS:
                args.append(_text(sanitize_strings(value)))
                params.append(f"${len(args)}::text::jsonb")
            else:
                args.append(value)
                params.append(f"${len(args)}")
        return columns, params, args

    async def rename_session(
        self,
        conn: asyncpg.Connection,
        session_id: str,
        name: str,
        session_type: str | None,
        user_id: str | None,
    ) -> dict[str, Any] | None:
        """Set `session_data.session_name`, leaving `updated_at` alone (as agno does).

        agno's `jsonb_set` fails on JSON-null `session_data` (a 500) and silently stores nothing
        on SQL NULL; here both become `{"session_name": name}` (see known differences).
        """
        if not storable(session_id) or (user_id is not None and not storable(user_id)):
            return None  # no row can have it
        args: list[Any] = [session_id, _text(sanitize_string(name))]
        sql = (
            f"UPDATE {self.sessions} SET session_data = CASE "
            "WHEN jsonb_typeof(session_data) = 'object' THEN jsonb_set(session_data, '{session_name}', $2::text::jsonb) "
            "ELSE jsonb_build_object('session_name', $2::text::jsonb) END "
            "WHERE session_id = $1"
        )
        if session_type is not None:
            args.append(session_type)
            sql += f" AND session_type = ${len(args)}"
        if user_id is not None:
            args.append(user_id)
            sql += f" AND user_id = ${len(args)}"
        row = await conn.fetchrow(sql + " RETURNING *", *args)
        return dict(row) if row is not None else None

    async def delete_session(self, conn: asyncpg.Connection, session_id: str, user_id: str | None) -> bool:
        """agno's `delete_session`: the row (owner-scoped), then its runs and side tables."""
        if not storable(session_id) or (user_id is not None and not storable(user_id)):
            return False
        async with conn.transaction():
            sql = f"DELETE FROM {self.sessions} WHERE session_id = $1"
            args: list[Any] = [session_id]
            if user_id is not None:
                sql += " AND user_id = $2"
                args.append(user_id)
            status = await conn.execute(sql, *args)
            if status.endswith(" 0"):
                return False
            await conn.execute(f"DELETE FROM {self.runs} WHERE session_id = $1", session_id)
            if self.transcripts:
                await conn.execute(f"DELETE FROM {self.transcripts} WHERE agno_session_id = $1", session_id)
            if self.compactions:
                await conn.execute(f"DELETE FROM {self.compactions} WHERE session_id = $1", session_id)
            return True

    async def delete_sessions(self, conn: asyncpg.Connection, session_ids: list[str], user_id: str | None) -> None:
        """agno's `delete_sessions`: only the ids the owner filter allows; runs of all given ids."""
        session_ids = [sid for sid in session_ids if storable(sid)]  # the others name no row
        if not session_ids or (user_id is not None and not storable(user_id)):
            return
        async with conn.transaction():
            if user_id is None:
                deletable = session_ids
            else:
                rows = await conn.fetch(
                    f"SELECT session_id FROM {self.sessions} WHERE session_id = ANY($1::varchar[]) AND user_id = $2",
                    session_ids,
                    user_id,
                )
                deletable = [r["session_id"] for r in rows]
            await conn.execute(f"DELETE FROM {self.sessions} WHERE session_id = ANY($1::varchar[])", deletable)
            if user_id is None:
                await conn.execute(f"DELETE FROM {self.runs} WHERE session_id = ANY($1::varchar[])", session_ids)
            else:
                await conn.execute(
                    f"DELETE FROM {self.runs} WHERE session_id = ANY($1::varchar[]) AND user_id = $2",
                    session_ids,
                    user_id,
                )
            cascade = session_ids if user_id is None else deletable
            if self.transcripts:
                await conn.execute(
                    f"DELETE FROM {self.transcripts} WHERE agno_session_id = ANY($1::varchar[])", cascade
                )
            if self.compactions:
                await conn.execute(f"DELETE FROM {self.compactions} WHERE session_id = ANY($1::varchar[])", cascade)

    # ---- sessions with their history (issue 14: create with runs, import) -------------------

    _RUN_COLUMNS = (
        "run_id",
        "session_id",
        "run_type",
        "agent_id",
        "team_id",
        "workflow_id",
        "user_id",
        "parent_run_id",
        "status",
        "run_index",
        "run_data",
        "created_at",
        "updated_at",
    )

    async def insert_runs(self, conn: asyncpg.Connection, rows: Sequence[dict[str, Any]]) -> None:
        """The runs-table rows of one session, as agno's `upsert_run` writes them (run_data as
        JSON text cast to jsonb). A run id already stored anywhere raises UniqueViolationError."""
        if not rows:
            return
        params = ", ".join(
            f"${i + 1}::text::jsonb" if c == "run_data" else f"${i + 1}" for i, c in enumerate(self._RUN_COLUMNS)
        )
        await conn.executemany(
            f"INSERT INTO {self.runs} ({', '.join(self._RUN_COLUMNS)}) VALUES ({params})",
            # run_data may come as its JSON text already (session_service.history.RunData).
            [
                tuple(
                    (r[c] if isinstance(r[c], str) else _text(r[c])) if c == "run_data" else r[c]
                    for c in self._RUN_COLUMNS
                )
                for r in rows
            ],
        )

    async def insert_session_with_runs(
        self,
        conn: asyncpg.Connection,
        values: dict[str, Any],
        rows: Sequence[dict[str, Any]],
        *,
        replace: bool = False,
    ) -> dict[str, Any] | None:
        """The session row and all its runs in one transaction. None when the id is taken
        (and not `replace`); with `replace` the stored session and its runs are deleted first,
        in the same transaction. A run id held by another session raises UniqueViolationError
        and nothing is written."""
        async with conn.transaction():
            if replace:
                await self.delete_session(conn, values["session_id"], None)
            row = await self.insert_session(conn, values)
            if row is None:
                return None
            await self.insert_runs(conn, rows)
        return row

    async def existing_session_ids(self, conn: asyncpg.Connection, session_ids: Sequence[str]) -> set[str]:
        """Which of `session_ids` are stored (an import skips them)."""
        rows = await conn.fetch(
            f"SELECT session_id FROM {self.sessions} WHERE session_id = ANY($1::varchar[])", list(session_ids)
        )
        return {r["session_id"] for r in rows}

    async def sessions_after(
        self, conn: asyncpg.Connection, q: SessionQuery, after: str | None, limit: int
    ) -> list[dict[str, Any]]:
        """Export: the sessions matching the list filters, in session_id order after `after`
        (keyset pages: stable while other clients write, unlike LIMIT/OFFSET)."""
        where, args = self._list_where(q)
        if after is not None:
            args.append(after)
            where += (" AND " if where else " WHERE ") + f"session_id > ${len(args)}"
        args.append(limit)
        rows = await conn.fetch(f"SELECT * FROM {self.sessions}{where} ORDER BY session_id LIMIT ${len(args)}", *args)
        return [dict(r) for r in rows]
