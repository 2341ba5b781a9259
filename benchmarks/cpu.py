"""CPU time per request, per endpoint and server: the figure that survives a busy machine.

Wall-clock req/s on two shared cores says as much about the neighbours as about the server.
The CPU a server process spends per request does not: it is read from the kernel's accounting
(utime + stime in /proc/<pid>/stat) before and after a wrk run and divided by the requests wrk
counted. Postgres's CPU (the postmaster's children: the backends serving the pools) is read the
same way and shown next to it, because on the list endpoints the SQL, not Python, is the cost.

    .venv/bin/python -m benchmarks.cpu                       # native, floor and legacy; 10k sessions
    .venv/bin/python -m benchmarks.cpu --servers native --seconds 3 --endpoints list,detail
    .venv/bin/python -m benchmarks.cpu --hold                # seed, start, print pids, wait (profiling)
    .venv/bin/python -m benchmarks.cpu --dsn postgresql://...  # a database --hold already seeded
    .venv/bin/python -m benchmarks.cpu --profile             # and CPU by kind of work (py-spy)
    .venv/bin/python -m benchmarks.cpu --servers native,legacy,gateway_0,gateway_100  # mirroring's cost

The rows are the suite's (benchmarks/dataset.py: real agno rows copied to --sessions sessions
plus the 20- and 1,000-run sessions); the endpoints are the suite's READS and WRITES.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from . import _harness, dataset, profile
from .loadgen import READ_SCRIPT, WRITE_SCRIPT, Cores, WrkResult, cpu_seconds, pin, run_wrk, settle, wrk_available
from .servers import (
    Server,
    create_store_database,
    log_dir,
    pin_all,
    start_floor,
    start_gateway,
    start_legacy,
    start_native,
)
from .suite import READS, RENAME_POOL, WRITES, started_together

SERVERS = ("native", "floor", "legacy", "gateway_0", "gateway_100")
# The gateway at stage `primary` (native in-process answers) with 0 % and 100 % of reads
# mirrored to legacy: what mirroring costs the serving process, per request and per copy.
GATEWAYS = {"gateway_0": 0.0, "gateway_100": 1.0}
DELETE_POOL = 20_000  # ids per server for delete (each used once); more than 4 s of native deletes


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", default=",".join(SERVERS), help=f"comma-separated, of {', '.join(SERVERS)}")
    names = [e.name for e in READS] + list(WRITES)
    parser.add_argument("--endpoints", default=",".join(names), help=f"comma-separated, of {', '.join(names)}")
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--seconds", type=int, default=3, help="wrk seconds per measurement (default 3)")
    parser.add_argument("--warmup", type=int, default=1, help="wrk seconds of warm-up before each (default 1)")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument(
        "--rounds", type=int, default=3, help="measurements per server, alternating; the least is shown (default 3)"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also record each native and floor run with py-spy and print CPU µs per request by kind of work",
    )
    parser.add_argument("--dsn", help="an already seeded database (e.g. from --hold): no Postgres of our own")
    parser.add_argument("--hold", action="store_true", help="seed and start, print DSN and pids, wait for Ctrl-C")
    parser.add_argument(
        "--base",
        type=Path,
        help="also measure a native service `base` from this source tree (e.g. `git archive main | tar -x -C DIR`)",
    )
    args = parser.parse_args(argv)
    args.servers = [s for s in args.servers.split(",") if s]
    args.endpoints = [e for e in args.endpoints.split(",") if e]
    unknown = set(args.servers) - set(SERVERS) | set(args.endpoints) - set(names)
    if unknown:
        parser.error(f"unknown names {sorted(unknown)}")
    if set(args.servers) & set(GATEWAYS) and "legacy" not in args.servers:
        parser.error("the gateways mirror to legacy: add legacy to --servers")
    return args


def postmaster_pid(data_dir: Path | None) -> int | None:
    if data_dir is None or not (data_dir / "postmaster.pid").exists():
        return None
    return int((data_dir / "postmaster.pid").read_text().split()[0])


def _stat(pid: int | str) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def postgres_cpu(master: int | None) -> float:
    """CPU seconds of the whole Postgres server so far: the postmaster, its live children
    (backends, background workers), and the children it has reaped (its cutime + cstime).

    The reaped ones matter: agno's SQLAlchemy pool opens overflow connections under load and
    closes them when they are returned, so backends are born and end within one wrk run; a sum
    over the live children alone would lose all of their work (it did: legacy's Postgres CPU
    per list request read 341 µs, where its statements take 11 ms)."""
    if master is None:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    fields = _stat(master)
    total = sum(int(fields[i]) for i in (11, 12, 13, 14)) / ticks  # utime stime cutime cstime
    for _, child in _children(master):
        total += (int(child[11]) + int(child[12])) / ticks
    return total


def _children(master: int) -> Iterator[tuple[int, list[str]]]:
    """(pid, stat fields) of the postmaster's live children."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            child = _stat(entry.name)
        except OSError:
            continue  # ended meanwhile: its time is in the postmaster's cutime/cstime once reaped
        if int(child[1]) == master:
            yield int(entry.name), child


def pin_postgres(master: int | None, cpus: str) -> None:
    """The postmaster and its live children onto `cpus`; backends it forks later inherit it.
    For benchmarks/mirror_cost.py: the backends answering legacy would otherwise run on the
    measured process's core, preempt it, and add to its CPU per copy. (Not done here: with wrk
    and the AgentOS on the other core as well, that core was overloaded, load average 6.)"""
    if master is None:
        return
    pin(master, cpus)
    for pid, _ in _children(master):
        pin(pid, cpus)


def measure(
    server: Server, pg_cpu: Callable[[], float], run: Callable[[float], WrkResult], seconds: int, warmup: int
) -> dict[str, Any]:
    """One warm-up, then one measured wrk run: CPU µs per request of the server and of Postgres."""
    if warmup:
        run(warmup)
        settle(server.pid)
        drain(server)
    s0, p0, c0 = cpu_seconds(server.pid), pg_cpu(), shadow_counts(server)
    result = run(seconds)
    settle(server.pid)
    drain(server)
    s1, p1, c1 = cpu_seconds(server.pid), pg_cpu(), shadow_counts(server)
    n = max(result.requests, 1)
    out: dict[str, Any] = {
        "requests": result.requests,
        "errors": result.error_count,
        "rps": round(result.rps, 1),
        "server_us": round((s1 - s0) * 1e6 / n),
        "postgres_us": round((p1 - p0) * 1e6 / n),
    }
    if server.name in GATEWAYS:
        out["compared_per_request"] = round((c1[0] - c0[0]) / n, 3)
        out["skipped_per_request"] = round((c1[1] - c0[1]) / n, 3)
    return out


def drain(server: Server, timeout_s: float = 120.0) -> None:
    """Wait until a gateway has no mirrored copy queued or in flight: the copies of a run are
    sent and compared after wrk stops (legacy is slower than native), and their CPU belongs to
    the run. No-op for a server that is not a gateway."""
    if server.name not in GATEWAYS:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _metric_sum(server, ("shadow_mirror_queue_depth", "shadow_mirror_inflight")) == 0:
            return
        time.sleep(0.2)
    raise RuntimeError(f"{server.name}: mirrored copies still pending after {timeout_s:.0f} s")


def _metric_sum(server: Server, names: tuple[str, ...]) -> float:
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(server.url + "/metrics", timeout=10).text
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name in names)


def shadow_counts(server: Server) -> tuple[float, float]:
    """A gateway's shadow comparisons (every result) and skipped copies so far, from /metrics
    (read with prometheus_client's parser); (0, 0) for a server that is not a gateway."""
    if server.name not in GATEWAYS:
        return 0.0, 0.0
    return _metric_sum(server, ("shadow_comparisons_total",)), _metric_sum(server, ("shadow_mirror_skipped_total",))


def start_base(dsn: str, tree: Path) -> Server:
    """The native service of another source tree (same interpreter and packages), as `base`."""
    import subprocess

    port = _harness.free_port()
    env = {
        **os.environ,
        "AGNO_PG_DSN": dsn,
        "AGNO_DEFAULT_DB_ID": "main-db",
        "AGNO_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(tree),
    }
    argv = [sys.executable, "-m", "session_service", "serve", "--host", "127.0.0.1", "--port", str(port)]
    log = open(log_dir() / "base.log", "ab")  # noqa: SIM115 - kept open for the child's lifetime
    proc = subprocess.Popen(argv, cwd=tree, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    else:
        proc.kill()
        raise RuntimeError(f"base native service from {tree} did not start (log {log.name})")
    return Server("base", url, proc.pid, lambda: (proc.terminate(), proc.wait(30), log.close()))


@contextmanager
def environment(args: argparse.Namespace) -> Iterator[tuple[str, Path | None, dict[str, Server]]]:
    """The database (ours, seeded, or the given one) and the servers, stopped on the way out."""
    with ExitStack() as stack:
        data_dir: Path | None = None
        if args.dsn:
            dsn = args.dsn
            data_dir = Path(os.environ["BENCH_PGDATA"]) if os.environ.get("BENCH_PGDATA") else None
        else:
            pg = _harness.PgServer()
            stack.callback(pg.stop)
            dsn = pg.main_dsn
            data_dir = pg._embedded.data_dir if pg._embedded is not None else None
        openai_url, stop_openai = _harness.start_fake_openai()
        stack.callback(stop_openai)
        if not args.dsn:
            print("[cpu] seeding through agno", file=sys.stderr, flush=True)
            _harness.seed(dsn, openai_url)
            dataset.build(dsn, args.sessions, (20, 1000))
            dataset.analyze(dsn)
        starts = {
            "native": lambda: start_native(dsn),
            "floor": lambda: start_floor(dsn, log_dir()),
            "legacy": lambda: start_legacy(dsn, openai_url),
        }
        names = [n for n in args.servers if n not in GATEWAYS]
        if args.base:
            starts["base"] = lambda: start_base(dsn, args.base)
            names.insert(names.index("native") + 1 if "native" in names else 0, "base")
        servers = started_together(*(starts[name] for name in names))
        for server in servers:
            stack.callback(server.stop)
        gateways = [n for n in args.servers if n in GATEWAYS]
        if gateways:
            legacy = next(s for s in servers if s.name == "legacy")
            logs = log_dir()
            for name in gateways:
                store = create_store_database(dsn, f"bench_cpu_{name}")
                gateway = start_gateway(name, dsn, store, legacy.url, "primary", GATEWAYS[name], logs)
                stack.callback(gateway.stop)
                servers.append(gateway)
        yield dsn, data_dir, {s.name: s for s in servers}


def runner(
    server: Server, endpoint: str, connections: int, cpus: str, used: dict[str, int]
) -> Callable[[float], WrkResult]:
    read = next((e for e in READS if e.name == endpoint), None)

    def run(seconds: float) -> WrkResult:
        if read is not None:
            return run_wrk(server.url + read.path, seconds, connections=connections, script=READ_SCRIPT, cpus=cpus)
        if endpoint == "delete":
            script_args = ["delete", f"bench-d-{server.name}-", str(used.get(server.name, 0)), str(DELETE_POOL), "1"]
        else:
            script_args = [endpoint, f"bench-w-{server.name}-", "0", str(RENAME_POOL), "1"]
        result = run_wrk(
            server.url, seconds, connections=connections, script=WRITE_SCRIPT, script_args=script_args, cpus=cpus
        )
        used[server.name] = used.get(server.name, 0) + result.requests
        return result

    return run


def profiled(server: Server, run: Callable[[float], WrkResult], seconds: int) -> dict[str, float]:
    """Shares of `server`'s CPU samples by kind of work (benchmarks/profile.py) over one wrk run."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "raw.txt"
        spy = profile.record(server.pid, seconds + 1, out)
        try:
            time.sleep(0.5)  # py-spy attached before the load starts
            run(seconds)
        finally:
            spy.wait(seconds + 30)
        return profile.shares(out.read_text().splitlines()) if out.exists() else {}


def bounds_table(rows: list[dict[str, Any]]) -> str:
    """Native's CPU per request split by kind of work, Postgres's next to it, and what that
    leaves of the ratio to legacy: legacy's CPU per request (server and Postgres) over native's
    now, and over native's Postgres alone (the ratio if native's own code cost nothing)."""
    kinds = sorted({k for row in rows for k in row.get("native", {}).get("bins", {})})
    head = "| endpoint | native server µs: " + ", ".join(kinds) + " | native Postgres µs | legacy server + Postgres µs "
    head += "| legacy / native CPU | legacy / native Postgres alone |"
    lines = [head, "|---|---|---|---|---|---|"]
    for row in rows:
        native, legacy = row.get("native"), row.get("legacy")
        if native is None or "bins" not in native:
            continue
        split = ", ".join(f"{round(native['server_us'] * native['bins'].get(k, 0.0)):,}" for k in kinds)
        cells = [f"{native['server_us']:,} = {split}", f"{native['postgres_us']:,}"]
        if legacy is not None:
            total = legacy["server_us"] + legacy["postgres_us"]
            cells.append(f"{legacy['server_us']:,} + {legacy['postgres_us']:,}")
            cells.append(f"{total / max(native['server_us'] + native['postgres_us'], 1):.1f}x")
            cells.append(f"{total / max(native['postgres_us'], 1):.1f}x")
        else:
            cells += ["–", "–", "–"]
        lines.append(f"| {row['endpoint']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def mirroring_table(rows: list[dict[str, Any]]) -> str:
    """What mirroring every read costs the gateway's serving process (native in-process and the
    gateway): its CPU per request at 0 % and at 100 %, the copies compared per request (fewer
    than one where the bounded queue dropped copies legacy could not take), and from those the
    CPU of one compared copy and of mirroring every request, as a share of the 0 % cost. Legacy
    serving the copies is not counted here: in a deployment it runs on its own machines, and it
    served this traffic before the rollout began."""
    head = "| endpoint | gateway 0 % µs/request | gateway 100 % µs/request | compared / skipped per request "
    head += "| µs per compared copy | mirroring every read costs |"
    lines = [head, "|---|---|---|---|---|---|"]
    for row in rows:
        off, on = row.get("gateway_0"), row.get("gateway_100")
        if off is None or on is None:
            continue
        per_copy = (on["server_us"] - off["server_us"]) / max(on["compared_per_request"], 1e-9)
        share = per_copy / max(off["server_us"], 1)
        lines.append(
            f"| {row['endpoint']} | {off['server_us']:,} | {on['server_us']:,} | "
            f"{on['compared_per_request']:.2f} / {on['skipped_per_request']:.2f} | {per_copy:,.0f} | {share:.0%} |"
        )
    return "\n".join(lines)


def table(rows: list[dict[str, Any]], servers: list[str]) -> str:
    head = "| endpoint | " + " | ".join(f"{s} server / postgres µs" for s in servers) + " |"
    lines = [head, "|---|" + "---|" * len(servers)]
    for row in rows:
        cells = []
        for s in servers:
            m = row.get(s)
            cells.append(
                "–"
                if m is None
                else f"{m['server_us']:,} / {m['postgres_us']:,}" + (f" ({m['errors']} errors)" if m["errors"] else "")
            )
        lines.append(f"| {row['endpoint']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not wrk_available():
        print("wrk is not installed: run `make tools` (Debian package wrk)", file=sys.stderr)
        return 2
    cores = Cores.split()
    with environment(args) as (dsn, data_dir, servers):
        pin_all(list(servers.values()), cores.server)
        if set(GATEWAYS) & set(servers):
            # The copies' legacy off the gateways' core: in a deployment it runs elsewhere, and
            # sharing one core with it inflates the gateway's own CPU per request (cache, switches).
            pin(servers["legacy"].pid, cores.generator)
        if args.hold:
            print(f"[cpu] DSN {dsn}  PGDATA {data_dir}", flush=True)
            for s in servers.values():
                print(f"[cpu] {s.name} {s.url} pid {s.pid}", flush=True)
            # A background job may start with SIGINT ignored: SIGTERM ends the hold as well.
            signal.signal(signal.SIGTERM, signal.default_int_handler)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                return 0
        master = postmaster_pid(data_dir)
        rows: list[dict[str, Any]] = []
        used: dict[str, int] = {}
        pools_added = False
        for endpoint in args.endpoints:
            if endpoint in WRITES and not pools_added:
                # After the reads, as in the suite: the reads see exactly --sessions rows.
                for name in servers:
                    dataset.add_write_pool(dsn, f"bench-w-{name}-", RENAME_POOL)
                    dataset.add_write_pool(dsn, f"bench-d-{name}-", DELETE_POOL)
                dataset.analyze(dsn)
                pools_added = True
            row: dict[str, Any] = {"endpoint": endpoint}
            measured = {
                name: server
                for name, server in servers.items()
                if not (name == "floor" and endpoint not in {e.name for e in READS if e.floor})
                and not (name in GATEWAYS and endpoint in WRITES)  # mirroring is of reads
            }
            rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in measured}
            for i in range(args.rounds):
                for name, server in measured.items():
                    run = runner(server, endpoint, args.connections, cores.generator, used)
                    # Warm-up before the first round only; later rounds follow another server's.
                    warm = args.warmup if i == 0 else 0
                    rounds[name].append(measure(server, lambda: postgres_cpu(master), run, args.seconds, warm))
            for name, results in rounds.items():
                # Interference (other processes on the cores) only adds CPU time: the least round
                # is the closest to the server's own cost.
                row[name] = min(results, key=lambda m: m["server_us"] + m["postgres_us"])
                print(f"[cpu] {endpoint} {name}: {row[name]} of {len(results)} rounds", file=sys.stderr, flush=True)
            if args.profile:
                for name in ("native", "floor"):
                    if name in measured:
                        run = runner(measured[name], endpoint, args.connections, cores.generator, used)
                        row[name]["bins"] = profiled(measured[name], run, args.seconds)
            rows.append(row)
    load = os.getloadavg()
    print(
        f"CPU µs per request (utime+stime over a {args.seconds} s wrk run, {args.connections} connections, "
        f"the least of {args.rounds} alternating rounds; load average at the end {load[0]:.2f})\n"
    )
    print(table(rows, [s for s in ("native", "base", "floor", "legacy", *GATEWAYS) if s in servers]))
    if set(GATEWAYS) <= set(servers):
        print("\n" + mirroring_table(rows))
    if args.profile:
        print("\n" + bounds_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
