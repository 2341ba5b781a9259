"""benchmarks/profile.py sorts py-spy samples into kinds of work; benchmarks/cpu.py counts
Postgres's CPU per request, backends that ended during the run included."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import pytest

from benchmarks import cpu, profile

# Frames as py-spy's raw format writes them (function (short path:line)).
HANDLER = "main (session_service/cli.py:60);run (session_service/serving.py:147);_handle (aiohttp/web_app.py:563)"
HANDLER += ";observe (session_service/middleware.py:129);list_sessions (session_service/views.py:230)"


@pytest.mark.parametrize(
    "leaf,kind",
    [
        ("decode_jsonb (session_service/store.py:59)", "JSONB decode"),
        ("raw_decode (json/decoder.py:353)", "JSONB decode"),
        ("dumps (session_service/render.py:39)", "JSON encode"),
        ("_dumps_deep (session_service/render.py:60)", "JSON encode"),
        ("session_list_item (session_service/render.py:455)", profile.RENDER),
        ("utc (session_service/render.py:132)", profile.RENDER),
        ("_do_execute (asyncpg/connection.py:2069)", "asyncpg"),
        ("_writelines (aiohttp/http_writer.py:116)", "HTTP (aiohttp)"),
        ("parse_query (session_service/validation.py:216)", "views, validation, SQL text"),
        ("inc (prometheus_client/values.py:28)", "middleware, metrics, logs"),
        ("isfuture (asyncio/base_futures.py:21)", "event loop, sockets"),
    ],
)
def test_innermost_named_frame_decides(leaf: str, kind: str) -> None:
    assert profile.bin_of_stack([*HANDLER.split(";"), leaf]) == kind


def test_a_leaf_no_rule_names_goes_to_the_nearest_named_caller() -> None:
    assert (
        profile.bin_of_stack([*HANDLER.split(";"), "<listcomp> (somewhere/else.py:3)"]) == "views, validation, SQL text"
    )
    # The handler's own frames are inner to the middleware: self time in observe is middleware.
    assert profile.bin_of_stack(HANDLER.split(";")[:4]) == "middleware, metrics, logs"
    # uvloop's C work shows as the loop's run frame itself.
    assert profile.bin_of_stack(["main (session_service/cli.py:60)", "run (session_service/serving.py:147)"]) == (
        "event loop, sockets"
    )
    assert profile.bin_of_stack(["<module> (x.py:1)"]) == profile.OTHER


def test_shares_weigh_samples_by_count() -> None:
    lines = [
        f"{HANDLER};decode_jsonb (session_service/store.py:59) 3",
        f"{HANDLER};_do_execute (asyncpg/connection.py:2069) 1",
        "garbage line without count",
        "",
    ]
    assert profile.shares(lines) == {"JSONB decode": 0.75, "asyncpg": 0.25}
    assert profile.shares([]) == {}


def _ppid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def test_postgres_cpu_counts_a_backend_that_ended(pg_dsn: str) -> None:
    """A connection opened, made to work and closed between two readings (what agno's pool
    overflow does under load) is counted: its CPU is in the postmaster's cutime once reaped."""

    async def run() -> tuple[int, float, float, float]:
        watcher = await asyncpg.connect(pg_dsn)
        try:
            master = _ppid(await watcher.fetchval("SELECT pg_backend_pid()"))
            before = cpu.postgres_cpu(master)
            worker = await asyncpg.connect(pg_dsn)
            backend = await worker.fetchval("SELECT pg_backend_pid()")
            await worker.fetchval("SELECT count(*) FROM generate_series(1, 4000000)")
            fields = Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()
            spent = (int(fields[11]) + int(fields[12])) / cpu.os.sysconf("SC_CLK_TCK")
            await worker.close()
            deadline = time.monotonic() + 10
            while Path(f"/proc/{backend}").exists() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)  # until the postmaster has reaped it
            return master, before, cpu.postgres_cpu(master), spent
        finally:
            await watcher.close()

    master, before, after, spent = asyncio.run(run())
    assert master > 1
    assert spent >= 0.05, "the backend did too little work to tell"
    assert after - before >= 0.9 * spent


def _affinity(pid: int) -> set[int]:
    return cpu.os.sched_getaffinity(pid)


@pytest.mark.skipif(len(cpu.os.sched_getaffinity(0)) < 2, reason="pinning needs two CPUs to be seen")
def test_pin_postgres_moves_the_postmaster_its_children_and_later_backends(pg_dsn: str) -> None:
    """The gateways' runs keep Postgres off their core: the postmaster, the backends it has, and
    one it forks afterwards all run on the given CPU. Put back on every CPU at the end."""
    every = cpu.os.sched_getaffinity(0)
    one = min(every)

    async def run() -> tuple[int, list[set[int]]]:
        old = await asyncpg.connect(pg_dsn)
        try:
            backend = await old.fetchval("SELECT pg_backend_pid()")
            master = _ppid(backend)
            cpu.pin_postgres(master, str(one))
            new = await asyncpg.connect(pg_dsn)
            try:
                later = await new.fetchval("SELECT pg_backend_pid()")
                return master, [_affinity(master), _affinity(backend), _affinity(later)]
            finally:
                await new.close()
        finally:
            await old.close()

    master = 0
    try:
        master, affinities = asyncio.run(run())
        assert affinities == [{one}, {one}, {one}]
    finally:
        if master:
            cpu.pin_postgres(master, ",".join(str(c) for c in sorted(every)))
