"""Sessions/s of `agentos-session import` and `export` (issue 14): N sessions with R runs each.

Real parts: an embedded Postgres, the runs made by the real agno runtime (harness seed against
the fake OpenAI server) as the template of every synthetic session (`s-agent-1`'s stored runs,
cycled, each with its own run id), the transfer module's own code paths. Steps, each timed:
import the generated JSON Lines into database `bench_src`, export it back to a file, import that
file into `bench_dst`. Reports wall-clock sessions/s (load-sensitive), this process's CPU
seconds per 1,000 sessions (the client side: JSON, validation, asyncpg), Postgres's CPU (the
server processes' utime+stime from /proc, before and after) and the machine's load average.

    .venv/bin/python -m benchmarks.transfer --sessions 10000 --runs 20
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks._harness import PgServer, create_database, seed, start_fake_openai
from session_service import transfer
from session_service.config import Tables
from session_service.store import SessionQuery


def _cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _cpu_postgres(data_dir: Path | None) -> float:
    """utime+stime (s) of this run's Postgres: the postmaster (named in the data directory's
    postmaster.pid) and its live children, plus the children it reaped (cutime+cstime). Other
    Postgres servers on the machine (other test runs) are not counted. 0 without a data dir."""
    if data_dir is None:
        return 0.0
    try:
        postmaster = Path(data_dir, "postmaster.pid").read_text().split()[0]
    except (OSError, IndexError):
        return 0.0
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if pid == postmaster:
            total += sum(int(v) for v in fields[11:15])
        elif fields[1] == postmaster:  # ppid
            total += int(fields[11]) + int(fields[12])
    return total / tick


def synthetic(template: dict[str, Any], n: int, runs_per: int) -> Iterator[str]:
    base = template["runs"]
    for i in range(n):
        sid = f"bench-{i:06d}"
        runs = []
        for j in range(runs_per):
            run = dict(base[j % len(base)])
            run["run_id"] = f"{sid}-r{j:03d}"
            run["session_id"] = sid
            run["created_at"] = template["created_at"] + j
            runs.append(run)
        yield json.dumps({**template, "session_id": sid, "created_at": template["created_at"] + i, "runs": runs})


def _timed(label: str, fn: Any, sessions: int, data_dir: Path | None) -> dict[str, Any]:
    cpu0, pg0, t0 = _cpu_self(), _cpu_postgres(data_dir), time.perf_counter()
    fn()
    wall, cpu, pg = time.perf_counter() - t0, _cpu_self() - cpu0, _cpu_postgres(data_dir) - pg0
    result = {
        "step": label,
        "sessions": sessions,
        "wall_s": round(wall, 2),
        "sessions_per_s": round(sessions / wall, 1),
        "client_cpu_s_per_1000": round(cpu / sessions * 1000, 3),
        "postgres_cpu_s_per_1000": round(pg / sessions * 1000, 3),
        "loadavg_1m_after": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result), file=sys.stderr)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args(argv)
    tables = Tables()
    quiet = io.StringIO()  # the progress counter; the summary lines are printed here instead
    server = PgServer()
    url, stop_openai = start_fake_openai()
    work = Path(tempfile.mkdtemp(prefix="bench-transfer-"))
    try:
        seed(server.main_dsn, url)
        template = next(
            line
            for line in [
                json.loads(json.dumps(item)) for item in asyncio.run(_collect(server.main_dsn, tables, SessionQuery()))
            ]
            if line["session_id"] == "s-agent-1"
        )
        source = work / "generated.jsonl"
        with source.open("w") as out:
            for line in synthetic(template, args.sessions, args.runs):
                out.write(line + "\n")
        src = create_database(server.admin_dsn, "bench_src")
        dst = create_database(server.admin_dsn, "bench_dst")
        exported = work / "exported.jsonl"
        embedded = getattr(server, "_embedded", None)  # None on an external server: no Postgres CPU
        data_dir = embedded.data_dir if embedded is not None else None
        results = [
            _timed(
                "import (into an empty database)", lambda: _import(src, tables, source, quiet), args.sessions, data_dir
            ),
            _timed("export", lambda: _export(src, tables, exported, quiet), args.sessions, data_dir),
            _timed(
                "import (the export, into another database)",
                lambda: _import(dst, tables, exported, quiet),
                args.sessions,
                data_dir,
            ),
            _timed(
                "import again (every id present: all skipped)",
                lambda: _import(dst, tables, exported, quiet),
                args.sessions,
                data_dir,
            ),
        ]
        print(
            json.dumps(
                {
                    "sessions": args.sessions,
                    "runs_per_session": args.runs,
                    "file_mb": round(source.stat().st_size / 1e6, 1),
                    "cpus": os.cpu_count(),
                    "results": results,
                },
                indent=2,
            )
        )
    finally:
        stop_openai()
        server.stop()
        for path in work.iterdir():
            path.unlink()
        work.rmdir()
    return 0


async def _collect(dsn: str, tables: Tables, q: SessionQuery) -> list[dict[str, Any]]:
    return [line async for line in transfer.export_lines(dsn, tables, q)]


def _import(dsn: str, tables: Tables, path: Path, out: io.StringIO) -> None:
    with path.open() as source:
        failed = asyncio.run(transfer.import_(dsn, tables, source, transfer.Progress("import", out)))
    assert failed == 0, out.getvalue()[-2000:]


def _export(dsn: str, tables: Tables, path: Path, out: io.StringIO) -> None:
    with path.open("w") as sink:
        asyncio.run(transfer.export(dsn, tables, SessionQuery(), sink, transfer.Progress("export", out)))


if __name__ == "__main__":
    raise SystemExit(main())
