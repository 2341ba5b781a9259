"""Helpers of the OpenAPI fuzzing tests (test_schemathesis.py): schemathesis cases generated from
native's own `/openapi.json`, sent to a real server, each answer checked, every case counted.

Two checks hold for every case:

- no 5xx: with the database up, no generated request is a server error (the 503 known
  differences need the database away, so none of them can explain one here);
- no change to rows the request did not name: `ai.agno_*` rows are snapshotted in Postgres (an
  md5 of each row's text, per session id) before and after the case; only the session ids the
  request names may differ: the path's `session_id`, a create's `session_id` (in the body, or
  the answer's when the body has none) and a bulk delete's `session_ids`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import psycopg
import requests
from hypothesis import HealthCheck, given
from hypothesis import strategies as st
from schemathesis.generation import GenerationMode

Snapshot = dict[tuple[str, str], frozenset[str]]

# agno's tables keyed by session: (table, the column holding the session id).
SESSION_KEYED = (("agno_sessions", "session_id"), ("agno_runs", "session_id"), ("agno_transcripts", "agno_session_id"))


def snapshot(conn: psycopg.Connection, schema: str = "ai") -> Snapshot:
    """Every row of agno's session-keyed tables, as `(table, session id) -> {md5 of the row}`."""
    present = {
        r[0]
        for r in conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,))
    }
    rows: dict[tuple[str, str], set[str]] = {}
    for table, column in SESSION_KEYED:
        if table not in present:
            continue
        query = f'SELECT "{column}", md5(t::text) FROM "{schema}"."{table}" t'  # names are constants
        for session_id, digest in conn.execute(query):
            rows.setdefault((table, session_id), set()).add(digest)
    return {key: frozenset(value) for key, value in rows.items()}


def named_ids(case: Any, response: requests.Response | Any) -> set[str]:
    """The session ids a request names (see the module docstring)."""
    names: set[str] = set()
    session_id = (case.path_parameters or {}).get("session_id")
    if isinstance(session_id, str):
        names.add(session_id)
    body = case.body if isinstance(case.body, dict) else None
    if body is not None:
        if isinstance(body.get("session_id"), str):
            names.add(body["session_id"])
        if isinstance(body.get("session_ids"), list):
            names.update(i for i in body["session_ids"] if isinstance(i, str))
    if case.method.upper() == "POST" and case.path == "/sessions" and response.status_code < 300:
        created = json.loads(response.content).get("session_id")
        if isinstance(created, str):
            names.add(created)
    return names


def changed_unnamed(before: Snapshot, after: Snapshot, names: set[str]) -> list[tuple[str, str]]:
    """`(table, session id)` whose rows changed although the request did not name the session."""
    keys = set(before) | set(after)
    return sorted(k for k in keys if k[1] not in names and before.get(k) != after.get(k))


@dataclass
class Tally:
    """What a fuzzing run saw: cases sent, statuses, and each failure with its request."""

    cases: int = 0
    call_s: float = 0.0  # time spent waiting for answers
    check_s: float = 0.0  # time spent in prepare and check (snapshots); the rest is generation
    statuses: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def add(self, status: int) -> None:
        self.cases += 1
        self.statuses[status] = self.statuses.get(status, 0) + 1


def fuzz(
    schema: Any,
    base_url: str,
    *,
    examples: int,
    tally: Tally,
    check: Callable[[Any, Any], None],
    prepare: Callable[[Any, Any], Any] | None = None,
    operations: Sequence[str] | None = None,
) -> None:
    """Send `examples` cases of each operation (positive and negative generation mixed, fixed
    seed) to `base_url`; `check(case, response)` raises on a failure (the case is recorded in
    `tally` and the run goes on, so one report lists them all). `prepare(case, draw)` may adjust
    a case first (e.g. aim it at a stored session)."""
    http = requests.Session()
    for result in schema.get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        if operations is not None and label not in operations:
            continue
        strategy = st.one_of(
            operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
            operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
        )

        @hypothesis.settings(
            max_examples=examples,
            derandomize=True,  # the same cases on every run: CI is reproducible
            database=None,
            deadline=None,
            phases=[hypothesis.Phase.generate],  # no shrinking: failures are collected, not raised
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy, data=st.data())
        def run(case: Any, data: st.DataObject) -> None:
            started = time.monotonic()
            if prepare is not None:
                case = prepare(case, data.draw)
            called = time.monotonic()
            response = case.call(base_url=base_url, session=http, timeout=30)
            answered = time.monotonic()
            tally.add(response.status_code)
            try:
                check(case, response)
            except AssertionError as exc:
                tally.failures.append(
                    f"{case.method} {case.path} {case.path_parameters} {case.query} {case.body!r:.200}: {exc}"
                )
            tally.call_s += answered - called
            tally.check_s += (called - started) + (time.monotonic() - answered)

        run()
    http.close()
