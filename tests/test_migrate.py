"""`agentos-session migrate --indexes`: optional, idempotent, and agno keeps working on the tables.

On a scratch database written by the real agno runtime (the seed): a dry run changes nothing;
the migration creates both indexes valid; a second run runs nothing; a failed concurrent build
(an INVALID index) is rebuilt; the native list statements then use the indexes; and the real
AgentOS still lists, creates, renames, updates and deletes sessions on the migrated tables.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import psycopg
import pytest

from agentos_session import cli
from benchmarks import floor
from harness import seed
from harness.postgres import PgServer, scratch_database
from harness.services import start_legacy
from session_service.config import Database, Tables
from session_service.migrate import indexes_for

NAMES = [i.name for i in indexes_for(Database("x", "", Tables()))]


@pytest.fixture(scope="module")
def scratch_dsn(_legacy_pg_server: PgServer, fake_openai_url: str) -> Iterator[str]:
    with scratch_database(_legacy_pg_server.admin_dsn, "migrate") as dsn:
        seed.seed(dsn, fake_openai_url)
        yield dsn


def _indexes(dsn: str) -> dict[str, bool]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'ai' AND c.relname = ANY(%s)",
            (NAMES,),
        ).fetchall()
    return {name: valid for name, valid in rows}


def _migrate(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], dsn: str, *extra: str) -> str:
    monkeypatch.setenv("AGNO_PG_DSN", dsn)
    capsys.readouterr()
    assert cli.main(["migrate", "--indexes", *extra]) == 0
    return capsys.readouterr().out


def test_migrate_is_optional_idempotent_and_rebuilds_invalid(
    scratch_dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _indexes(scratch_dsn) == {}  # agno's tables come without them; nothing adds them silently
    dry = _migrate(monkeypatch, capsys, scratch_dsn, "--dry-run")
    assert "would run 2 statement(s)" in dry and dry.count("CREATE INDEX CONCURRENTLY IF NOT EXISTS") == 2
    assert _indexes(scratch_dsn) == {}
    first = _migrate(monkeypatch, capsys, scratch_dsn)
    assert "ran 2 statement(s)" in first
    assert _indexes(scratch_dsn) == {name: True for name in NAMES}
    again = _migrate(monkeypatch, capsys, scratch_dsn)
    assert "ran 0 statement(s)" in again and again.count("exists") == 2
    # A concurrent build that failed leaves an INVALID index that IF NOT EXISTS would keep.
    with psycopg.connect(scratch_dsn, autocommit=True) as conn:
        conn.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = %s::regclass", (f"ai.{NAMES[0]}",))
    assert _indexes(scratch_dsn)[NAMES[0]] is False
    rebuilt = _migrate(monkeypatch, capsys, scratch_dsn)
    assert "ran 2 statement(s)" in rebuilt and "DROP INDEX CONCURRENTLY" in rebuilt
    assert _indexes(scratch_dsn) == {name: True for name in NAMES}


def test_native_list_statements_use_the_indexes(
    scratch_dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _migrate(monkeypatch, capsys, scratch_dsn)
    with psycopg.connect(scratch_dsn) as conn:
        conn.execute("SET enable_seqscan = off")  # the scratch table is tiny: ask whether the index can serve
        sorted_plan = "\n".join(
            r[0] for r in conn.execute(f"EXPLAIN {floor.SORTED.replace('$1', '20').replace('$2', '0')}").fetchall()
        )
        filtered_plan = "\n".join(
            r[0]
            for r in conn.execute(
                "EXPLAIN "
                + floor.FILTERED.replace("$1", "'u'").replace("$2", "'agent'").replace("$3", "20").replace("$4", "0")
            ).fetchall()
        )
    assert NAMES[0] in sorted_plan, sorted_plan
    assert NAMES[1] in filtered_plan, filtered_plan


def test_agentos_reads_and_writes_the_migrated_tables(
    scratch_dsn: str, fake_openai_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _migrate(monkeypatch, capsys, scratch_dsn)
    legacy = start_legacy(scratch_dsn, fake_openai_url, name="agentos-migrated")
    try:
        with httpx.Client(base_url=legacy.url, timeout=30) as c:
            listed = c.get("/sessions", params={"sort_by": "updated_at", "sort_order": "desc"})
            assert listed.status_code == 200 and listed.json()["meta"]["total_count"] > 0
            made = c.post(
                "/sessions",
                params={"type": "agent"},
                json={"session_id": "mig-1", "user_id": "mig-user", "session_name": "first"},
            )
            assert made.status_code == 201, made.text
            assert (
                c.post("/sessions/mig-1/rename", params={"type": "agent"}, json={"session_name": "n"}).status_code
                == 200
            )
            assert c.patch("/sessions/mig-1", params={"type": "agent"}, json={"metadata": {"k": 1}}).status_code == 200
            mine = c.get("/sessions", params={"user_id": "mig-user", "type": "agent"}).json()
            assert [s["session_id"] for s in mine["data"]] == ["mig-1"]
            assert c.delete("/sessions/mig-1").status_code == 204
            assert c.get("/sessions/mig-1").status_code == 404
    finally:
        legacy.stop()
    assert _indexes(scratch_dsn) == {name: True for name in NAMES}  # and agno left them alone
