"""`agentos-session export` / `import` between two real databases (issue 14).

The seeded main database (real agno agent, team and workflow runs, 2.x legacy blobs, NULL and
JSON-null columns) is exported to JSON Lines and imported into a fresh database on the same
embedded server; one native service serving both (`db_id` src / dst) then answers every read
route byte-identically on both sides. Importing again skips every session; `--replace`
replaces them; an import killed half-way (SIGKILL) is finished by running it again, with every
session whole (each is one transaction) and none twice.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from harness.postgres import scratch_database
from harness.processes import REPO
from harness.services import start_native
from tests.commands import run_command
from tests.contract.differential import mask_clock
from tests.legacy.fixtures import serving


@pytest.fixture(scope="module")
def target_dsn(pg_dsn: str) -> Iterator[str]:
    with scratch_database(pg_dsn, "transfer_dst") as dsn:
        yield dsn


@pytest.fixture(scope="module")
def native_both(request: pytest.FixtureRequest, seeded: None, pg_dsn: str, target_dsn: str) -> Iterator[str]:
    env = {"AGNO_SESSION_DSN_MAP": json.dumps({"src": pg_dsn, "dst": target_dsn})}
    for proc in serving(request, start_native(env, "native-transfer")):
        yield proc.url


@pytest.fixture(scope="module")
def exported(seeded: None, pg_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("transfer") / "sessions.jsonl"
    result = run_command("export", "--dsn", pg_dsn, "-o", path)
    assert result.code == 0, result.err
    assert "sessions/s" in result.err.splitlines()[-1]
    return path


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def count(dsn: str, table: str = "agno_sessions") -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(f"SELECT count(*) FROM ai.{table}").fetchone()
        return int(row[0]) if row else 0


def reads(client: httpx.Client, base: str, db_id: str, session_ids: list[str]) -> dict[str, bytes]:
    """Every read route of every session (and the list), as native answers them on `db_id`."""
    out = {}

    def get(path: str) -> bytes:
        sep = "&" if "?" in path else "?"
        r = client.get(f"{base}{path}{sep}db_id={db_id}")
        assert r.status_code in (200, 404), (path, r.status_code, r.text)
        out[path] = r.content
        return r.content

    # session_id order: unique, where created_at ties (sessions made in one second) order freely
    get("/sessions?limit=100&sort_by=session_id&sort_order=asc")
    get("/sessions?limit=100&sort_by=session_id&sort_order=desc&type=agent")
    for sid in session_ids:
        for stype in (None, "agent", "team", "workflow"):
            q = f"?type={stype}" if stype else ""
            get(f"/sessions/{sid}{q}")
            runs = get(f"/sessions/{sid}/runs{q}")
            get(f"/sessions/{sid}/run-previews{q}")
            if stype is None and runs.startswith(b"["):
                for run in json.loads(runs):
                    get(f"/sessions/{sid}/runs/{run['run_id']}")
    return out


def reads_one(client: httpx.Client, base: str, db_id: str, path: str) -> bytes:
    sep = "&" if "?" in path else "?"
    return client.get(f"{base}{path}{sep}db_id={db_id}").content


def test_export_writes_one_session_per_line_with_runs_and_summary(exported: Path, pg_dsn: str) -> None:
    items = lines(exported)
    assert len(items) == count(pg_dsn)
    by_id = {i["session_id"]: i for i in items}
    assert by_id["s-agent-meta"]["summary"]["summary"]
    assert len(by_id["s-agent-1"]["runs"]) == 2
    assert by_id["legacy-2"]["runs"], "a 2.x blob's runs are merged in"
    assert {i["session_type"] for i in items} == {"agent", "team", "workflow"}
    filtered = run_command("export", "--dsn", pg_dsn, "--type", "team", "--user-id", "user-3")
    assert {i["session_id"] for i in map(json.loads, filtered.out.splitlines())} == {"s-team-2"}


def test_round_trip_reads_byte_identical(exported: Path, pg_dsn: str, target_dsn: str, native_both: str) -> None:
    result = run_command("import", exported, "--dsn", target_dsn)
    assert result.code == 0, result.err
    total = len(lines(exported))
    assert f"{total} imported" in result.err.splitlines()[-1], result.err
    ids = [i["session_id"] for i in lines(exported)]
    with httpx.Client(timeout=30) as client:
        source, copy = reads(client, native_both, "src", ids), reads(client, native_both, "dst", ids)
    assert source.keys() == copy.keys()
    # A workflow read of a row with SQL-NULL updated_at (legacy-1) shows the server's clock, as
    # agno's does: a differing path is read again on both sides at once and compared with the
    # clock masked (within a few seconds of now); every other timestamp must be equal.
    differing = [path for path in source if source[path] != copy[path]]
    with httpx.Client(timeout=30) as client:
        still = [
            path
            for path in differing
            if mask_clock(reads_one(client, native_both, "src", path))
            != mask_clock(reads_one(client, native_both, "dst", path))
        ]
    assert not still, still[:5]
    assert len(differing) <= 1, differing
    assert count(target_dsn, "agno_runs") >= sum(len(i["runs"]) for i in lines(exported))

    again = run_command("import", exported, "--dsn", target_dsn)
    assert again.code == 0 and f"{total} skipped" in again.err.splitlines()[-1], again.err

    # --replace: a session changed in the target is put back as exported, in one transaction.
    with psycopg.connect(target_dsn) as conn:
        conn.execute("DELETE FROM ai.agno_runs WHERE session_id = 's-agent-1'")
        conn.execute("UPDATE ai.agno_sessions SET user_id = 'someone-else' WHERE session_id = 's-agent-1'")
    replaced = run_command("import", exported, "--dsn", target_dsn, "--replace")
    assert replaced.code == 0 and f"{total} replaced" in replaced.err.splitlines()[-1], replaced.err
    with httpx.Client(timeout=30) as client:
        assert reads(client, native_both, "dst", ["s-agent-1"]) == reads(client, native_both, "src", ["s-agent-1"])


def test_invalid_line_is_reported_and_the_rest_imported(tmp_path: Path, pg_dsn: str) -> None:
    good = {"session_id": "t-good", "session_type": "agent", "created_at": 1795550000, "runs": []}
    bad = {"session_id": "t-bad", "session_type": "agent", "runs": [{"agent_id": "a"}]}
    path = tmp_path / "mixed.jsonl"
    path.write_text(json.dumps(bad) + "\n{not json\n" + json.dumps(good) + "\n")
    with scratch_database(pg_dsn, "transfer_bad") as dsn:
        result = run_command("import", path, "--dsn", dsn)
        assert result.code == 1
        assert '"loc": ["line", 1, "runs", 0, "run_id"]' in result.err, result.err
        assert "line 2: invalid JSON" in result.err
        assert count(dsn) == 1


def synthetic(template: dict[str, Any], n: int, runs_per: int) -> Iterator[str]:
    """`n` sessions shaped like a real exported one, each with `runs_per` runs of its own ids."""
    base_runs = template["runs"]
    for i in range(n):
        sid = f"syn-{i:06d}"
        runs = []
        for j in range(runs_per):
            run = dict(base_runs[j % len(base_runs)])
            run["run_id"] = f"{sid}-r{j:03d}"
            run["session_id"] = sid
            runs.append(run)
        yield json.dumps({**template, "session_id": sid, "created_at": template["created_at"] + i, "runs": runs})


def test_interrupted_import_resumes(exported: Path, pg_dsn: str, tmp_path: Path) -> None:
    template = next(i for i in lines(exported) if i["session_id"] == "s-agent-1")
    total, runs_per = 3000, 5
    path = tmp_path / "many.jsonl"
    path.write_text("\n".join(synthetic(template, total, runs_per)) + "\n")
    with scratch_database(pg_dsn, "transfer_resume") as dsn:
        command = [sys.executable, "-m", "agentos_session.cli", "import", str(path), "--dsn", dsn]
        proc = subprocess.Popen(command, cwd=REPO, stderr=subprocess.DEVNULL, env=os.environ.copy())
        deadline = time.monotonic() + 120
        try:
            seen = 0
            with psycopg.connect(dsn, autocommit=True) as conn:
                while time.monotonic() < deadline and proc.poll() is None:
                    try:
                        row = conn.execute("SELECT count(*) FROM ai.agno_sessions").fetchone()
                        seen = int(row[0]) if row else 0
                    except psycopg.errors.UndefinedTable:
                        seen = 0
                    if seen >= 200:
                        proc.send_signal(signal.SIGKILL)
                        break
                    time.sleep(0.02)
        finally:
            proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL, "the import finished before it could be interrupted"
        partial = count(dsn)
        assert 200 <= partial < total
        # Whole sessions only: every stored session has all its runs.
        with psycopg.connect(dsn) as conn:
            short = conn.execute(
                "SELECT count(*) FROM ai.agno_sessions s WHERE (SELECT count(*) FROM ai.agno_runs r "
                "WHERE r.session_id = s.session_id) <> %s",
                (runs_per,),
            ).fetchone()
        assert short == (0,)
        resumed = run_command("import", path, "--dsn", dsn)
        assert resumed.code == 0, resumed.err
        assert f"{total - partial} imported, {partial} skipped" in resumed.err.splitlines()[-1] or (
            f"{partial} skipped, {total - partial} imported" in resumed.err.splitlines()[-1]
        ), resumed.err
        assert count(dsn) == total
        assert count(dsn, "agno_runs") == total * runs_per


def test_db_id_names_a_database_of_the_services_configuration(
    exported: Path, pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGNO_SESSION_DSN_MAP", json.dumps({"src": pg_dsn}))
    by_id = run_command("export", "--db-id", "src", "--type", "workflow")
    assert by_id.code == 0, by_id.err
    expected = [i for i in lines(exported) if i["session_type"] == "workflow"]
    assert [json.loads(line) for line in by_id.out.splitlines()] == expected
    missing = run_command("export", "--db-id", "nowhere")
    assert missing.code == 2 and "nowhere" in missing.err
