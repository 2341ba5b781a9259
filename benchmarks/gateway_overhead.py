"""What the gateway costs: the same route, the same load, direct and through the gateway, side by
side in one run.

- legacy direct vs the gateway at stage `legacy` (a pure proxy) and at stage `shadow` with
  every request mirrored to the in-process native service and compared;
- native direct (its own process) vs the gateway at stage `native` (native in-process).

Everything runs on one machine: the real agno AgentOS on a seeded embedded Postgres, the
services, and the load generator (aiohttp, closed loop). So the figures are ratios, not
capacities.

    .venv/bin/python -m benchmarks.gateway_overhead [--seconds 4] [--concurrency 8]
    .venv/bin/python -m benchmarks.gateway_overhead --only native --repeat 5   # the in-process path

`--only native` measures just native direct against the gateway at stage `native`, alternating
the two `--repeat` times (one gateway process for all rounds), and prints each round and the
median and spread of the p50 difference: on a shared machine one round's noise is larger than
the in-process path's cost. It also prints the CPU time each serving process spent per request
(user + system, from /proc/<pid>/stat): unlike latency, that barely moves when other work
competes for the cores, so it shows what the gateway's hop itself costs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import aiohttp
import httpx

from harness.fake_openai import start_fake_openai
from harness.postgres import PgServer
from harness.processes import free_port, stop
from harness.seed import seed
from harness.services import reset_gateway_tables, start_process
from harness.services import start_legacy as AgentOSProcess
from harness.services import start_native as NativeProcess

PATH = "/sessions/s-agent-1"
LOG_LEVEL = "WARNING"  # the gateway's and native direct's: no access lines on either side


async def load(url: str, seconds: float, concurrency: int) -> tuple[float, float, float]:
    """(requests/s, p50 ms, p99 ms) of GET `url` under `concurrency` closed-loop workers."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    async with aiohttp.ClientSession() as session:

        async def worker() -> None:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                async with session.get(url) as r:
                    await r.read()
                    assert r.status == 200, (url, r.status)
                latencies.append(time.perf_counter() - started)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    return len(latencies) / elapsed, latencies[len(latencies) // 2] * 1e3, latencies[int(len(latencies) * 0.99)] * 1e3


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_context() -> str:
    """When, on what and at which commit a run was made: the line to paste above its table
    (figures from a loaded machine are not comparable with a quiet one's)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        commit = ""
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return f"Run {stamp}, commit {commit or 'unknown'}, {os.cpu_count()} CPUs, load average {load} (1, 5, 15 min)"


def start_gateway(dsn: str, legacy_url: str, stage: str, log_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    # A stored stage wins over the configured one: start each run from no stored stage.
    asyncio.run(reset_gateway_tables(dsn))
    port = free_port()
    env = {
        "AGNO_PG_DSN": dsn,
        "AGNO_DEFAULT_DB_ID": "main-db",
        "AGNO_LEGACY_URL": legacy_url,
        "AGNO_GATEWAY_PORT": str(port),
        "AGNO_GATEWAY_STAGE": stage,
        "AGNO_LOG_LEVEL": LOG_LEVEL,
    }
    return start_process(port, env, log_dir / f"gateway-{stage}.log"), f"http://127.0.0.1:{port}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--only", choices=("all", "native"), default="all")
    parser.add_argument("--repeat", type=int, default=1, help="rounds of --only native")
    args = parser.parse_args()
    pg = PgServer()
    openai_url, stop_openai = start_fake_openai()
    log_dir = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    services: list = []
    try:
        seed(pg.main_dsn, openai_url)
        legacy = AgentOSProcess(pg.main_dsn, openai_url, name="bench-legacy")
        services.append(legacy)
        # At the gateway's log level: an access line written per request by one side only would
        # be counted as the other's saving (the in-process core writes its line at DEBUG).
        native_env = {"AGNO_PG_DSN": pg.main_dsn, "AGNO_DEFAULT_DB_ID": "main-db", "AGNO_LOG_LEVEL": LOG_LEVEL}
        native = NativeProcess(native_env, "bench-native")
        services.append(native)
        rows = []
        if args.only == "native":
            native_rounds(pg.main_dsn, legacy.url, (native.url, native.pid), log_dir, args)
            return

        def measure(name: str, url: str) -> tuple[float, float, float]:
            result = asyncio.run(load(url + PATH, args.seconds, args.concurrency))
            rows.append((name, *result))
            return result

        def through_gateway(stage: str, name: str) -> str:
            proc, url = start_gateway(pg.main_dsn, legacy.url, stage, log_dir)
            try:
                measure(name, url)
                return httpx.get(url + "/metrics").text
            finally:
                stop(proc)

        legacy_direct = measure("legacy direct", legacy.url)
        through_gateway("legacy", "gateway, stage legacy")
        mirrored = through_gateway("shadow", "gateway, stage shadow (100% mirrored to native, compared)")
        native_direct = measure("native direct", native.url)
        through_gateway("native", "gateway, stage native (in-process)")
    finally:
        for service in services:
            service.stop()
        stop_openai()
        pg.stop()
    print(f"GET {PATH}, {args.concurrency} workers, {args.seconds:g} s each")
    print(f"{run_context()}\n")
    print("| path | req/s | p50 ms | p99 ms | req/s vs direct |\n|---|---:|---:|---:|---:|")
    for name, rps, p50, p99 in rows:
        base = native_direct[0] if "native" in name and "shadow" not in name else legacy_direct[0]
        print(f"| {name} | {rps:,.0f} | {p50:.1f} | {p99:.1f} | {rps / base:.2f}x |")
    compared = [line for line in mirrored.splitlines() if line.startswith("shadow_comparisons_total")]
    skipped = [line for line in mirrored.splitlines() if line.startswith("shadow_mirror_skipped_total")]
    print("\nstage shadow run, comparisons:", compared or "none", "\nskipped:", skipped or "none")


def native_rounds(dsn: str, legacy_url: str, native: tuple[str, int], log_dir: Path, args: argparse.Namespace) -> None:
    """Native direct and the gateway at stage `native`, alternated `args.repeat` times."""
    native_url, native_pid = native
    proc, gateway_url = start_gateway(dsn, legacy_url, "native", log_dir)
    rounds = []

    def timed(url: str, pid: int) -> tuple[float, float, float, float]:
        """(req/s, p50 ms, p99 ms, CPU µs per request of the process serving it)."""
        before = cpu_seconds(pid)
        rps, p50, p99 = asyncio.run(load(url + PATH, args.seconds, args.concurrency))
        return rps, p50, p99, (cpu_seconds(pid) - before) / (rps * args.seconds) * 1e6

    try:
        for _ in range(args.repeat):
            rounds.append((timed(native_url, native_pid), timed(gateway_url, proc.pid)))
    finally:
        stop(proc)
    print(f"GET {PATH}, {args.concurrency} workers, {args.seconds:g} s each, {args.repeat} rounds")
    print(f"{run_context()}\n")
    print(
        "| round | direct req/s | direct p50 ms | direct CPU µs/req | gateway req/s | gateway p50 ms "
        "| gateway CPU µs/req | p50 difference ms |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for number, (direct, through) in enumerate(rounds, 1):
        print(
            f"| {number} | {direct[0]:,.0f} | {direct[1]:.2f} | {direct[3]:,.0f} | {through[0]:,.0f} "
            f"| {through[1]:.2f} | {through[3]:,.0f} | {through[1] - direct[1]:+.2f} |"
        )
    differences = sorted(through[1] - direct[1] for direct, through in rounds)
    cpu = sorted(through[3] - direct[3] for direct, through in rounds)
    print(
        f"\np50 difference, gateway minus direct: median {statistics.median(differences):+.2f} ms, "
        f"range {differences[0]:+.2f} .. {differences[-1]:+.2f} ms"
    )
    print(
        f"CPU per request, gateway (with native in-process) minus native direct: median "
        f"{statistics.median(cpu):+,.0f} µs, range {cpu[0]:+,.0f} .. {cpu[-1]:+,.0f} µs"
    )


if __name__ == "__main__":
    main()
