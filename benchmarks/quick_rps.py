"""A first side-by-side look at read throughput: native service vs the real agno AgentOS.

Both serve the same seeded embedded Postgres; each route is hit by the same closed-loop load
(aiohttp client, N concurrent workers, D seconds) one side after the other, and the ratio is
printed. This is the quick check of issue 2; the benchmark suite proper is a later issue.

    .venv/bin/python -m benchmarks.quick_rps [--seconds 5] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import time

import aiohttp

from benchmarks._harness import AgentOSProcess, NativeProcess, PgServer, seed, start_fake_openai

ROUTES = ["/sessions", "/sessions/s-agent-1", "/sessions/s-team-2/runs", "/sessions/s-agent-1/runs/run-s-agent-1-a"]


async def load(url: str, seconds: float, concurrency: int) -> float:
    done = 0
    deadline = time.perf_counter() + seconds
    async with aiohttp.ClientSession() as session:

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                async with session.get(url) as r:
                    await r.read()
                    assert r.status == 200, (url, r.status)
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    pg = PgServer()
    openai_url, stop_openai = start_fake_openai()
    legacy = native = None
    try:
        seed(pg.main_dsn, openai_url)
        legacy = AgentOSProcess(pg.main_dsn, openai_url, name="bench-legacy")
        native = NativeProcess({"AGNO_PG_DSN": pg.main_dsn, "AGNO_DEFAULT_DB_ID": "main-db"}, "bench-native")
        print("| route | legacy req/s | native req/s | native / legacy |\n|---|---|---|---|")
        for route in ROUTES:
            legacy_rps = asyncio.run(load(legacy.url + route, args.seconds, args.concurrency))
            native_rps = asyncio.run(load(native.url + route, args.seconds, args.concurrency))
            print(f"| `GET {route}` | {legacy_rps:.0f} | {native_rps:.0f} | {native_rps / legacy_rps:.1f}x |")
    finally:
        for proc in (native, legacy):
            if proc is not None:
                proc.stop()
        stop_openai()
        pg.stop()


if __name__ == "__main__":
    main()
