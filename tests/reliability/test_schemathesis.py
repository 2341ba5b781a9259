"""schemathesis against the native service and the gateway: cases generated from native's own
`/openapi.json` (positive and negative, fixed seed), over 1,000 in all, sent over HTTP.

- native (`python -m session_service serve`): no 5xx, and no change to a row the request did
  not name (checked in Postgres before and after each case, tests/reliability/fuzzing.py);
- the gateway (`agentos-session gateway`) at stage `primary` with a real agno AgentOS as legacy
  (both sides over the same database, the shipped default): no 5xx reaches the client, and the
  same row check.

Everything runs on a Postgres of its own (tests/reliability/conftest.py `own_pg`) holding a copy
of the seeded sessions and runs (real agent, team and workflow runs, harness/seed.py), so the
fuzzer may delete and rewrite rows without touching the database the other tests share. A
quarter of the cases are aimed at a stored session (their `session_id` drawn from the copy);
a stored session a case deleted is put back before the next case.

The generation is derandomized (a fixed seed); schemathesis's cases also depend on Python's
string hashing, so `PYTHONHASHSEED=0` reproduces a run exactly (the same status counts).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
import schemathesis
from hypothesis import strategies as st

from harness.processes import Process, free_port
from harness.services import gateway_env, start_gateway, start_legacy, start_native
from tests.reliability.conftest import StoppablePg
from tests.reliability.fuzzing import SESSION_KEYED, Tally, changed_unnamed, fuzz, named_ids, snapshot

NATIVE_EXAMPLES = 70  # per operation: 10 operations
GATEWAY_EXAMPLES = 40
MIN_CASES = 1_000
# Each test asserts its own share, so that either passes or fails alone (`-k`) and the two
# together are over MIN_CASES (90 % of what was asked: schemathesis may drop duplicate cases).
NATIVE_MIN_CASES = 640
GATEWAY_MIN_CASES = 360
assert NATIVE_MIN_CASES + GATEWAY_MIN_CASES >= MIN_CASES
assert NATIVE_MIN_CASES <= NATIVE_EXAMPLES * 10 * 0.92 and GATEWAY_MIN_CASES <= GATEWAY_EXAMPLES * 10 * 0.9
SCHEMA = "ai"
# agno's own answer to `delete_media=true` on an AgentOS without media storage (agno's session
# router raises it; native answers it byte for byte): a documented 503, not a server fault.
MEDIA_503 = b'{"detail":"Media storage is not configured on AgentOS"}'


class StoredCopy:
    """The seeded rows copied into the fuzzing database, and what puts a deleted one back."""

    def __init__(self, source_dsn: str, target_dsn: str) -> None:
        self.conn = psycopg.connect(target_dsn, autocommit=True)
        self.rows: dict[str, list[tuple[str, list[str], list[tuple[Any, ...]]]]] = {}
        with psycopg.connect(source_dsn) as source:
            for table, column in SESSION_KEYED:
                if not _exists(source, table) or not _exists(self.conn, table):
                    continue
                # The columns both tables have (the seeded one may carry agno's optional extras).
                target_columns = set(_columns(self.conn, table))
                columns = [c for c in _columns(source, table) if c in target_columns]
                index = columns.index(column)
                names = ", ".join(f'"{c}"' for c in columns)
                for row in source.execute(f'SELECT {names} FROM "{SCHEMA}"."{table}"'):  # names are the tables'
                    self.rows.setdefault(row[index], []).append((table, columns, list(row)))
        self.session_ids = sorted(
            sid for sid, rows in self.rows.items() if any(t == "agno_sessions" for t, _, _ in rows)
        )
        for session_id in self.rows:
            self.put_back(session_id)

    def put_back(self, session_id: str) -> None:
        """Insert the copied rows of `session_id` that are missing (a delete took them)."""
        for table, columns, values in self.rows[session_id]:
            names = ", ".join(f'"{c}"' for c in columns)
            marks = ", ".join(["%s"] * len(columns))
            adapted = [psycopg.types.json.Jsonb(v) if isinstance(v, (dict, list)) else v for v in values]
            self.conn.execute(
                f'INSERT INTO "{SCHEMA}"."{table}" ({names}) VALUES ({marks}) ON CONFLICT DO NOTHING', adapted
            )

    def restore_deleted(self) -> None:
        present = {r[0] for r in self.conn.execute(f'SELECT session_id FROM "{SCHEMA}".agno_sessions')}
        for session_id in self.session_ids:
            if session_id not in present:
                self.put_back(session_id)


def _columns(conn: psycopg.Connection, table: str) -> list[str]:
    query = (
        "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s"
        " ORDER BY ordinal_position"
    )
    return [r[0] for r in conn.execute(query, (SCHEMA, table))]


def _exists(conn: psycopg.Connection, table: str) -> bool:
    query = "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = %s"
    return conn.execute(query, (SCHEMA, table)).fetchone() is not None


@pytest.fixture(scope="module")
def fuzz_native(own_pg: StoppablePg) -> Iterator[Process]:
    native = start_native({"AGNO_PG_DSN": own_pg.dsn, "AGNO_DEFAULT_DB_ID": "main-db"}, name="native-fuzz")
    try:
        yield native
    finally:
        native.close()


@pytest.fixture(scope="module")
def stored(fuzz_native: Process, own_pg: StoppablePg, seeded: None, pg_dsn: str) -> Iterator[StoredCopy]:
    copy = StoredCopy(pg_dsn, own_pg.dsn)  # native created agno's tables at start-up
    assert len(copy.session_ids) >= 5, copy.session_ids
    try:
        yield copy
    finally:
        copy.conn.close()


@pytest.fixture(scope="module")
def schema(fuzz_native: Process) -> Any:
    document = httpx.get(fuzz_native.url + "/openapi.json", timeout=10).json()
    return schemathesis.openapi.from_dict(document)


def _checker(stored: StoredCopy) -> tuple[Any, Any]:
    state: dict[str, Any] = {}

    def prepare(case: Any, draw: Any) -> Any:
        """Aim a quarter of the cases at a stored session; snapshot the rows just before."""
        stored.restore_deleted()
        if "session_id" in (case.path_parameters or {}) and draw(st.integers(0, 3)) == 0:
            case.path_parameters["session_id"] = draw(st.sampled_from(stored.session_ids))
        state["before"] = snapshot(stored.conn)
        return case

    def check(case: Any, response: Any) -> None:
        if not (response.status_code == 503 and response.content == MEDIA_503 and "delete_media" in (case.query or {})):
            assert response.status_code < 500, f"{response.status_code} {response.content[:300]!r}"
        after = snapshot(stored.conn)
        changed = changed_unnamed(state["before"], after, named_ids(case, response))
        assert not changed, f"rows the request did not name changed: {changed[:5]}"

    return prepare, check


def _report(what: str, tally: Tally, elapsed: float, cpu_s: float) -> None:
    statuses = ", ".join(f"{s}: {n}" for s, n in sorted(tally.statuses.items()))
    print(
        f"\n[schemathesis] {what}: {tally.cases} cases in {elapsed:.1f} s (test process CPU {cpu_s:.1f} s), {tally.call_s:.1f} s of it waiting for answers, {tally.check_s:.1f} s in row snapshots ({statuses}); failures {len(tally.failures)}"
    )


CASES: dict[str, int] = {}


def test_native_answers_no_5xx_and_touches_only_named_rows(
    schema: Any, fuzz_native: Process, stored: StoredCopy
) -> None:
    tally = Tally()
    prepare, check = _checker(stored)
    started, cpu = time.monotonic(), time.process_time()
    fuzz(schema, fuzz_native.url, examples=NATIVE_EXAMPLES, tally=tally, check=check, prepare=prepare)
    _report("native", tally, time.monotonic() - started, time.process_time() - cpu)
    CASES["native"] = tally.cases
    assert not tally.failures, "\n".join(tally.failures)
    assert tally.cases >= NATIVE_MIN_CASES, tally.cases
    # Both kinds of answer were reached: the fuzzer found the 2xx paths and the 4xx ones.
    assert any(s < 300 for s in tally.statuses) and any(400 <= s < 500 for s in tally.statuses), tally.statuses


@pytest.fixture(scope="module")
def fuzz_gateway(
    own_pg: StoppablePg, stored: StoredCopy, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Process]:
    legacy = start_legacy(own_pg.dsn, "http://127.0.0.1:9", name="agentos-fuzz")  # no model is called
    try:
        port = free_port()
        env = gateway_env(own_pg.dsn, legacy.url, port, "primary")
        gateway = start_gateway(port, env, tmp_path_factory.mktemp("gateway-fuzz") / "gateway.log")
        try:
            yield gateway
        finally:
            gateway.close()
    finally:
        legacy.close()


def test_gateway_at_primary_answers_no_5xx(schema: Any, fuzz_gateway: Process, stored: StoredCopy) -> None:
    stage = httpx.get(fuzz_gateway.url + "/shadow/stage", timeout=10)
    assert "primary" in stage.text, stage.text
    tally = Tally()
    prepare, check = _checker(stored)
    started, cpu = time.monotonic(), time.process_time()
    fuzz(schema, fuzz_gateway.url, examples=GATEWAY_EXAMPLES, tally=tally, check=check, prepare=prepare)
    _report("gateway at primary", tally, time.monotonic() - started, time.process_time() - cpu)
    CASES["gateway"] = tally.cases
    assert not tally.failures, "\n".join(tally.failures)
    assert tally.cases >= GATEWAY_MIN_CASES, tally.cases
    # Random clients must not move the rollout: a bad id both sides refuse alike is no native
    # error, an empty id in a bulk delete names nothing to read back; every group stays at
    # primary (else legacy, with agno's own 500s, would have answered part of the run).
    groups = httpx.get(fuzz_gateway.url + "/shadow/stage", timeout=10).json()["groups"]
    assert {name: g["stage"] for name, g in groups.items()} == dict.fromkeys(groups, "primary"), groups
    print(f"[schemathesis] total: {sum(CASES.values())} cases ({json.dumps(CASES)})")
