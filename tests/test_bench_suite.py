"""The benchmark suite's pieces work (benchmarks/): not speed, only that the figures mean what
they say.

- the floor runs exactly the native service's statements (the store's SQL, captured by a query
  logger on a real connection, equals the floor's copies);
- the dataset copies agno's rows with consistent new ids, and the floor answers every read
  endpoint of the suite on them;
- wrk's Lua scripts load and the write script really writes (renamed names and deleted rows are
  in the database afterwards), and wrk's report is parsed;
- the results JSON follows its schema, and the docs section between the markers is replaced.

Everything runs on a database of its own (seeded by the real agno runtime, then copied), on the
embedded Postgres of the test session, so the shared seeded database stays untouched.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import jsonschema  # type: ignore[import-untyped]  # jsonschema ships no type stubs
import psycopg
import pytest

from benchmarks import _harness, dataset, floor, report, suite
from benchmarks.loadgen import READ_SCRIPT, WRITE_SCRIPT, Cores, parse_report, run_wrk
from benchmarks.measure import Plan, alternate, ratio
from benchmarks.servers import Server, start_floor, start_native
from session_service.config import Tables
from session_service.store import SessionQuery, Store

SESSIONS = 300


@pytest.fixture(scope="module")
def bench_dsn(_legacy_pg_server: _harness.PgServer, fake_openai_url: str) -> str:
    """A database of this module's own: the agno seed, then copies up to SESSIONS sessions."""
    dsn = _harness.create_database(_legacy_pg_server.admin_dsn, "bench_suite_test")
    _harness.seed(dsn, fake_openai_url)
    dataset.build(dsn, SESSIONS, (20,))
    return dsn


@pytest.fixture(scope="module")
def floor_server(bench_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_floor(bench_dsn, tmp_path_factory.mktemp("floor"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def native_server(bench_dsn: str) -> Iterator[Server]:
    server = start_native(bench_dsn)
    try:
        yield server
    finally:
        server.stop()


# ---- the floor's SQL is the store's -------------------------------------------------------------


async def _store_statements(dsn: str) -> dict[str, list[str]]:
    """The statements the native store sends for each benchmarked request, as Postgres gets them."""
    conn = await asyncpg.connect(dsn)
    sent: list[str] = []
    conn.add_query_logger(lambda record: sent.append(record.query))
    tables = Tables()
    columns, extra = await Store.introspect(conn, tables)
    store = Store(tables, columns, extra)
    sid = dataset.runs_session_id(20)
    calls: dict[str, Any] = {
        "list": lambda: store.list_sessions(conn, SessionQuery()),
        "filtered": lambda: store.list_sessions(conn, SessionQuery(session_type="agent", user_id="bench-user-7")),
        "sorted": lambda: store.list_sessions(conn, SessionQuery(sort_by="updated_at")),
        "runs_of_sessions": lambda: store.runs_of_sessions(conn, [sid]),
        "session_with_runs": lambda: store.session_with_runs(conn, sid, None),
        "session_with_run": lambda: store.session_with_run(conn, sid, None, dataset.run_id_of(sid, 7)),
    }
    out = {}
    try:
        for name, call in calls.items():
            sent.clear()
            await call()
            await asyncio.sleep(0.05)  # asyncpg calls query loggers soon after, not inline
            # Only the store's own statements (asyncpg also logs its type introspection).
            out[name] = [q for q in sent if '"ai"."agno_' in q]
    finally:
        await conn.close()
    return out


def test_floor_sql_is_the_native_stores(bench_dsn: str) -> None:
    sent = asyncio.run(_store_statements(bench_dsn))
    assert sent == {
        "list": [floor.LIST],
        "filtered": [floor.FILTERED],
        "sorted": [floor.SORTED],
        "runs_of_sessions": [floor.RUNS_OF_SESSIONS],
        "session_with_runs": [floor.GET_SESSION, floor.RUNS_OF_SESSION],
        "session_with_run": [floor.SESSION_WITH_RUN],
    }


# ---- the dataset and the floor --------------------------------------------------------------------


def test_dataset_copies_agno_rows_with_consistent_ids(bench_dsn: str) -> None:
    with psycopg.connect(bench_dsn) as conn:
        (sessions,) = conn.execute("SELECT count(*) FROM ai.agno_sessions").fetchone() or (0,)
        (mismatched,) = conn.execute(
            "SELECT count(*) FROM ai.agno_runs WHERE run_data->>'run_id' <> run_id "
            "OR run_data->>'session_id' <> session_id"
        ).fetchone() or (1,)
        (orphans,) = conn.execute(
            "SELECT count(*) FROM ai.agno_runs r LEFT JOIN ai.agno_sessions s USING (session_id) "
            "WHERE s.session_id IS NULL"
        ).fetchone() or (1,)
        runs_20 = conn.execute(
            "SELECT run_index, run_id FROM ai.agno_runs WHERE session_id = %s ORDER BY run_index",
            (dataset.runs_session_id(20),),
        ).fetchall()
        types: dict[str, int] = dict(
            conn.execute(
                "SELECT session_type, count(*) FROM ai.agno_sessions WHERE session_id LIKE 'bench-s-%' GROUP BY 1"
            ).fetchall()
        )
    assert sessions == SESSIONS
    assert mismatched == 0 and orphans == 0
    assert [r[0] for r in runs_20] == list(range(20))
    assert runs_20[7][1] == dataset.run_id_of(dataset.runs_session_id(20), 7)
    assert set(types) == {"agent", "team", "workflow"}


@pytest.mark.parametrize("endpoint", suite.READS, ids=[e.name for e in suite.READS])
def test_floor_answers_every_read_of_the_suite(floor_server: Server, bench_dsn: str, endpoint: suite.Endpoint) -> None:
    r = httpx.get(floor_server.url + endpoint.path, timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    if endpoint.name.startswith("list"):
        assert len(body["data"]) == min(20, body["total"]) and body["total"] > 0
        if endpoint.name == "list":
            assert body["total"] == SESSIONS
        if endpoint.name == "list_filtered":
            assert {(s["user_id"], s["session_type"]) for s in body["data"]} == {("bench-user-7", "agent")}
        if endpoint.name == "list_sorted":
            keys = [s["updated_at"] or s["created_at"] for s in body["data"]]
            assert keys == sorted(keys, reverse=True)
    elif endpoint.name == "detail":
        assert body["session_id"] == dataset.runs_session_id(20) and len(body["runs"]) == 20
    elif endpoint.name == "run_by_id":
        assert body["run_id"] == dataset.run_id_of(dataset.runs_session_id(20), 7)
    else:
        assert len(body) == 20


def test_floor_unknown_session_is_404(floor_server: Server) -> None:
    assert httpx.get(floor_server.url + "/sessions/no-such-session", timeout=10).status_code == 404


# ---- wrk, its scripts and its report --------------------------------------------------------------


def test_wrk_is_installed() -> None:
    assert shutil.which("wrk"), "wrk is the suite's load generator: `make tools` installs it"


def test_read_script_loads_and_reports(floor_server: Server) -> None:
    result = run_wrk(floor_server.url + suite.READS[3].path, 1, connections=2, script=READ_SCRIPT)
    assert result.requests > 0 and result.error_count == 0
    assert 0 < result.p50_ms <= result.p99_ms <= result.max_ms


def test_write_script_renames_patches_and_deletes(native_server: Server, bench_dsn: str) -> None:
    dataset.add_write_pool(bench_dsn, "t-w-", 50)
    dataset.add_write_pool(bench_dsn, "t-d-", 3000)
    results = {}
    for kind, prefix, count in (("rename", "t-w-", "50"), ("patch", "t-w-", "50"), ("delete", "t-d-", "3000")):
        args = [kind, prefix, "0", count, "1"]
        results[kind] = run_wrk(native_server.url, 1, connections=2, script=WRITE_SCRIPT, script_args=args)
    created = run_wrk(native_server.url, 1, connections=2, script=WRITE_SCRIPT, script_args=["create"])
    for r in (*results.values(), created):
        assert r.requests > 0 and r.error_count == 0, r
    with psycopg.connect(bench_dsn) as conn:
        names = conn.execute(
            "SELECT count(*) FROM ai.agno_sessions WHERE session_id LIKE 't-w-%' "
            "AND session_data->>'session_name' LIKE 'renamed %'"
        ).fetchone()
        patched = conn.execute(
            "SELECT count(*) FROM ai.agno_sessions WHERE session_id LIKE 't-w-%' AND metadata->>'bench' = 'true'"
        ).fetchone()
        (left,) = conn.execute("SELECT count(*) FROM ai.agno_sessions WHERE session_id LIKE 't-d-%'").fetchone() or (0,)
        (made,) = conn.execute("SELECT count(*) FROM ai.agno_sessions WHERE user_id = 'bench-writer'").fetchone() or (
            0,
        )
    assert names and names[0] == min(50, results["rename"].requests)
    assert patched and patched[0] == min(50, results["patch"].requests)
    # wrk counts answered requests; the (at most 2) in flight when it stops may land as well.
    assert results["delete"].requests <= 3000 - left <= results["delete"].requests + 2  # one id each
    assert created.requests <= made <= created.requests + 2


def test_wrk_report_without_its_line_is_an_error() -> None:
    from benchmarks.loadgen import WrkError

    with pytest.raises(WrkError):
        parse_report("Running 1s test @ http://127.0.0.1:1/\n  1 threads and 1 connections\n")


# ---- results JSON and docs ----------------------------------------------------------------------


def _results(floor_server: Server) -> dict[str, Any]:
    args = suite.parse_args(["--quick", "--sessions", str(SESSIONS)])
    cores = Cores.split()
    results = suite.header(args, ["--quick"], cores, 0.0)
    plan = Plan(seconds=1, warmup_s=0, rounds=2, connections=2, generator_cpus=cores.generator)
    measured = alternate([floor_server], plan, suite.read_runner(suite.READS[0].path, plan))
    results["dataset"] = {"sessions": SESSIONS, "runs": 1, "runs_sessions": [20]}
    results["reads"] = [
        {
            "name": "list",
            "label": "list",
            "kind": "read",
            "request": "GET /sessions",
            "servers": measured,
            "ratios": {"native/floor": ratio(measured.get("native"), measured["floor"])},
        }
    ]
    results["seconds_total"] = 2.0
    return results


def test_results_follow_the_schema_and_render(floor_server: Server, tmp_path: Path) -> None:
    results = _results(floor_server)
    report.validate(json.loads(report.dumps(results)))
    floor_figures = results["reads"][0]["servers"]["floor"]
    assert len(floor_figures["rounds"]) == 2 and floor_figures["peak_rss_mib"] > 0
    assert floor_figures["rps_min"] <= floor_figures["rps"] <= floor_figures["rps_max"]

    broken = json.loads(report.dumps(results))
    del broken["reads"][0]["servers"]["floor"]["rps"]
    with pytest.raises(jsonschema.ValidationError):
        report.validate(broken)

    docs = tmp_path / "benchmarks.md"
    docs.write_text("# Benchmarks\n\nkept before\n")
    report.write_docs(docs, "the growth section", "growth")
    report.write_docs(docs, report.markdown(results), "quick")
    report.write_docs(docs, report.markdown(results).replace("#### Reads", "#### Reads again"), "quick")
    text = docs.read_text()
    begin, end = report.markers("quick")
    assert text.count(begin) == 1 and text.count(end) == 1
    assert "the growth section" in text  # another mode's section is left alone
    assert "kept before" in text and "#### Reads again" in text and "#### Reads\n" not in text


def test_modes_and_their_defaults() -> None:
    quick = suite.parse_args(["--quick"])
    full = suite.parse_args([])
    assert (quick.mode, quick.seconds, quick.rounds, quick.connections) == ("quick", 1.0, 2, 8)
    assert (full.mode, full.seconds, full.rounds, full.connections) == ("full", 10.0, 3, 32)
    assert quick.out.name == "quick.json" and full.out.name == "full.json"
    assert suite.parse_args(["--growth"]).mode == "growth"
    for bad in (["--quick", "--growth"], ["--only", "reads,nonsense"]):
        with pytest.raises(SystemExit):
            suite.parse_args(bad)
