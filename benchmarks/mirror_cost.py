"""What one mirrored copy costs the gateway's process, taken apart (issue 12's "mirroring 100 %
of reads at stage primary costs <= 10 %").

    .venv/bin/python -m benchmarks.mirror_cost                 # its own seeded Postgres and AgentOS
    .venv/bin/python -m benchmarks.mirror_cost --copies 1000

`benchmarks.cpu --servers legacy,gateway_0,gateway_100` measures a copy as the difference of two
gateways' CPU per request under load; on two cores that difference is noisy (the AgentOS, its
Postgres backends and wrk all compete, and legacy's queue drops a varying share of the copies).
Here the copies are made with nothing else in the process: the gateway's own parts (`Gateway`
built as `shadow_proxy.app` builds it, with its store, rules and metrics; its mirror workers),
this process pinned to the server core, the real AgentOS on the other, and the process's CPU
time (`time.process_time`, every thread) read around each batch. Per request of each read endpoint:

- `copy`: a job offered to `Mirror.offer` as the hot path offers it, until the workers have
  sent it, compared the answers and counted the verdict (`queue.join()`);
- `exchange`: the HTTP exchange with legacy alone (`Sides.call`: aiohttp's client, the
  metrics of the call);
- `judge`: comparing two equal answers and settling the verdict alone (`Judge.compare` and
  `Judge.settle`: the comparator, the tally, the gate's window, the report's cohorts).

What remains of `copy` is the queue, the worker, the copy's headers and latency counts.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from agentos_session.sessions_api import route_label
from comparator import Request
from shadow_proxy.config import GatewayConfig, load_config
from shadow_proxy.gateway import Gateway
from shadow_proxy.metrics import GatewayMetrics
from shadow_proxy.mirroring import Job
from shadow_proxy.sides import HttpSide
from shadow_proxy.store import GatewayStore

from . import _harness, dataset
from .cpu import pin_postgres, postmaster_pid
from .loadgen import Cores, pin
from .report import run_identity
from .servers import create_store_database, gateway_config_file, log_dir, start_legacy
from .suite import READS, Endpoint

BATCH = 64  # copies offered at once
HEADERS = {"Host": "gateway.local", "User-Agent": "wrk", "Accept": "*/*", "X-Forwarded-For": "127.0.0.1"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    names = [e.name for e in READS]
    parser.add_argument("--endpoints", default=",".join(names), help=f"comma-separated, of {', '.join(names)}")
    parser.add_argument("--copies", type=int, default=600, help="per endpoint and measurement (default 600)")
    parser.add_argument("--rounds", type=int, default=3, help="measurements of each part; the least is shown")
    parser.add_argument("--sessions", type=int, default=10_000)
    args = parser.parse_args(argv)
    args.endpoints = [e for e in args.endpoints.split(",") if e]
    if set(args.endpoints) - set(names):
        parser.error(f"unknown endpoints {sorted(set(args.endpoints) - set(names))}")
    return args


def cpu_now() -> float:
    """This process's CPU seconds, every thread (CLOCK_PROCESS_CPUTIME_ID: finer than ticks)."""
    return time.process_time()


async def per_item_us(make: Callable[[], Awaitable[Any]], n: int, concurrency: int) -> float:
    """CPU µs of this process per awaited `make()`, `concurrency` at a time."""
    slots = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with slots:
            await make()

    started = cpu_now()
    await asyncio.gather(*(one() for _ in range(n)))
    return (cpu_now() - started) / n * 1e6


async def measure(legacy_url: str, store_dsn: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    config = load_config(gateway_config_file(log_dir()), env={"AGNO_LEGACY_URL": legacy_url})
    pool = await asyncpg.create_pool(store_dsn, min_size=1, max_size=4)
    store = GatewayStore(pool, config.store.max_samples, config.store.max_age_s)
    await store.ensure_schema()
    legacy = HttpSide("legacy", legacy_url, config.legacy.max_connections)
    # The native side is not called here: a copy's primary answer is given to the job.
    gateway = Gateway(
        config,
        legacy=legacy,
        native=HttpSide("native", legacy_url, 1),
        metrics=GatewayMetrics(),
        store=store,
        rules=config.load_rules(),
        noise=None,
    )
    await gateway.sides.start()
    workers = [asyncio.create_task(gateway.mirror.worker()) for _ in range(config.shadow.max_inflight)]
    rows = []
    try:
        for endpoint in (e for e in READS if e.name in args.endpoints):
            rows.append(await measure_endpoint(gateway, config, endpoint, args))
            print(f"[mirror] {rows[-1]}", file=sys.stderr, flush=True)
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        await gateway.sides.close()
        gateway.judge.close()
        await pool.close()
    return rows


async def measure_endpoint(
    gateway: Gateway, config: GatewayConfig, endpoint: Endpoint, args: argparse.Namespace
) -> dict[str, Any]:
    """The three measurements of one endpoint, `args.rounds` times each, the least kept."""
    route = route_label("GET", endpoint.path.partition("?")[0])
    group = config.group_of(route)
    assert group is not None, route
    request = Request("GET", endpoint.path, dict(HEADERS), b"")
    first = await gateway.sides.call("legacy", request, route, "primary", 30.0)
    assert first.response.status == 200, (endpoint.path, first.response.status)
    window = gateway.rollout.windows[group.name]

    def job() -> Job:
        return Job("mirror", "bench", time.time(), route, group, "primary", request, first, "legacy")

    async def copies(n: int) -> None:
        # In batches the queue takes whole (`shadow.queue_size`, `queue_max_bytes`): a copy it
        # dropped would cost next to nothing and lower the figure. Every one is compared.
        compared = sum(gateway.tally.counts.get(route, {}).values())
        for start in range(0, n, BATCH):
            for _ in range(min(BATCH, n - start)):
                gateway.mirror.offer(job(), {})
            await gateway.mirror.queue.join()
        done = sum(gateway.tally.counts.get(route, {}).values()) - compared
        assert done == n, f"{route}: {done} of {n} copies compared"

    async def exchange() -> None:
        await gateway.sides.call("legacy", request, route, "primary", config.shadow.timeout_s)

    async def judged() -> None:
        comparison = await gateway.judge.compare(first.response, first.response, request)
        await gateway.judge.settle(job(), window, request, (first.response, first.response, comparison))

    parts: dict[str, list[float]] = {"copy": [], "exchange": [], "judge": []}
    await copies(50)  # warm: connections opened, the store's statements prepared
    for _ in range(args.rounds):
        started = cpu_now()
        await copies(args.copies)
        parts["copy"].append((cpu_now() - started) / args.copies * 1e6)
        parts["exchange"].append(await per_item_us(exchange, args.copies, config.shadow.max_inflight))
        parts["judge"].append(await per_item_us(judged, args.copies, 1))
    row: dict[str, Any] = {"endpoint": endpoint.name, "bytes": len(first.response.body)}
    return row | {name: round(min(values)) for name, values in parts.items()}


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| endpoint | answer bytes | a copy, µs | of it: HTTP exchange with legacy | comparing and settling | the rest |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        rest = r["copy"] - r["exchange"] - r["judge"]
        lines.append(
            f"| {r['endpoint']} | {r['bytes']:,} | {r['copy']:,} | {r['exchange']:,} | {r['judge']:,} | {rest:,} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cores = Cores.split()
    started = time.time()
    pg = _harness.PgServer()
    openai_url, stop_openai = _harness.start_fake_openai()
    legacy = None
    try:
        print("[mirror] seeding through agno", file=sys.stderr, flush=True)
        _harness.seed(pg.main_dsn, openai_url)
        dataset.build(pg.main_dsn, args.sessions, (20, 1000))
        dataset.analyze(pg.main_dsn)
        legacy = start_legacy(pg.main_dsn, openai_url)
        pin(legacy.pid, cores.generator)
        # Postgres with it: backends answering legacy on this core would preempt the copies.
        pin_postgres(postmaster_pid(pg._embedded.data_dir if pg._embedded else None), cores.generator)
        pin(os.getpid(), cores.server)
        store_dsn = create_store_database(pg.main_dsn, "bench_mirror_cost")
        rows = asyncio.run(measure(legacy.url, store_dsn, args))
    finally:
        if legacy is not None:
            legacy.stop()
        stop_openai()
        pg.stop()
    identity = run_identity("benchmarks.mirror_cost", argv, started)
    print(f"Command: `{identity['command']}`, started {identity['started_at']}.\n")
    print(
        f"CPU µs of the gateway's process per mirrored copy ({args.copies} copies per measurement, "
        f"{args.rounds} rounds, the least shown; this process on CPU {cores.server}, the AgentOS "
        f"and Postgres on {cores.generator})\n"
    )
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
