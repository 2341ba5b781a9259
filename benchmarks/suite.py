"""The side-by-side benchmark suite (issue 12): AgentOS vs native service vs a bare floor, the
gateway's cost, the comparator's speed and, with --growth, latency as the data grows.

One embedded Postgres, seeded by the real agno runtime, then copied in SQL to `--sessions`
sessions plus sessions with 20 and 1,000 runs. wrk drives each endpoint on every server in
alternating rounds after a warm-up, pinned to one core while the servers are pinned to the other.
Results go to benchmarks/results/<mode>.json and between the markers of docs/benchmarks.md.

    make bench          # .venv/bin/python -m benchmarks.suite
    make bench-quick    # .venv/bin/python -m benchmarks.suite --quick  (under 2 minutes)
    .venv/bin/python -m benchmarks.suite --growth --growth-sizes 10000,100000,1000000
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import functools
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from . import _harness, dataset, report
from .loadgen import READ_SCRIPT, WRITE_SCRIPT, Cores, WrkResult, run_wrk, wrk_available
from .measure import Plan, alternate, ratio
from .servers import Server, create_store_database, log_dir, pin_all, start_floor, start_gateway, start_legacy
from .servers import start_native as start_native_server

RUNS_20 = dataset.runs_session_id(20)


@dataclass(frozen=True)
class Endpoint:
    name: str
    label: str
    path: str
    floor: bool = True  # the floor serves it (reads only)


READS = (
    Endpoint("list", "list, 20 of N", "/sessions?limit=20&page=1"),
    Endpoint("list_filtered", "list filtered by type and user", "/sessions?type=agent&user_id=bench-user-7"),
    Endpoint("list_sorted", "list sorted by updated_at", "/sessions?sort_by=updated_at&sort_order=desc"),
    Endpoint("detail", "detail, 20-run session", f"/sessions/{RUNS_20}"),
    Endpoint("runs", "runs of that session", f"/sessions/{RUNS_20}/runs"),
    Endpoint("run_by_id", "one run by id", f"/sessions/{RUNS_20}/runs/{dataset.run_id_of(RUNS_20, 7)}"),
    Endpoint("run_previews", "run-previews", f"/sessions/{RUNS_20}/run-previews"),
)
WRITES = ("create", "rename", "patch", "delete")
WRITE_LABELS = {"create": "create", "rename": "rename", "patch": "PATCH", "delete": "delete"}
GATEWAY_ENDPOINTS = ("list", "detail")
QUICK_NO_FLOOR = ("run_by_id", "run_previews")
PARTS = ("reads", "writes", "gateway", "comparator")
RENAME_POOL = 1000  # rename and PATCH cycle over these ids


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short rounds, under 2 minutes in all")
    parser.add_argument("--sessions", type=int, default=10_000, help="sessions in the table during the reads")
    parser.add_argument("--seconds", type=float, help="per round, whole seconds for wrk (default 10, quick 1)")
    parser.add_argument("--warmup", type=float, help="seconds of warm-up per server and endpoint (default 3)")
    parser.add_argument("--rounds", type=int, help="rounds per server and endpoint (default 3, quick 2)")
    parser.add_argument("--connections", type=int, help="wrk connections, closed loop (default 32, quick 8)")
    parser.add_argument("--growth", action="store_true", help="also measure growth (not with --quick)")
    parser.add_argument("--growth-sizes", default="10000,100000", help="session counts for --growth")
    parser.add_argument("--growth-runs", default="1,10,100,1000", help="runs per session for --growth")
    parser.add_argument("--only", default=",".join(PARTS), help="comma-separated parts to run, or `none`")
    parser.add_argument("--out", type=Path, help="results JSON (default benchmarks/results/<mode>.json)")
    parser.add_argument("--docs", type=Path, default=_harness.REPO_ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--note", help="a sentence printed next to the figures (e.g. what else ran on the machine)")
    parser.add_argument("--no-docs", action="store_true", help="do not touch docs/benchmarks.md")
    args = parser.parse_args(argv)
    if args.quick and args.growth:
        parser.error("--growth is not part of --quick")
    unknown = set(args.only.split(",")) - {*PARTS, "none"}
    if unknown:
        parser.error(f"--only: unknown parts {sorted(unknown)}; known: {', '.join(PARTS)}, none")
    args.seconds = args.seconds if args.seconds is not None else (1.0 if args.quick else 10.0)
    args.warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 3.0)
    args.rounds = args.rounds if args.rounds is not None else (2 if args.quick else 3)
    # Quick rounds last 1 s: with 32 connections a slow server (AgentOS at ~30 req/s on a busy
    # machine) may answer none of them inside the round, so quick mode queues fewer requests.
    args.connections = args.connections if args.connections is not None else (8 if args.quick else 32)
    mode = "quick" if args.quick else ("growth" if args.growth else "full")
    args.mode = mode
    args.out = args.out or _harness.REPO_ROOT / "benchmarks" / "results" / f"{mode}.json"
    return args


def started_together(*starts: Callable[[], Server]) -> list[Server]:
    """Start servers in parallel (each start waits for its health check), in the given order;
    if one fails, the others are stopped and the error raised."""
    with concurrent.futures.ThreadPoolExecutor(len(starts)) as pool:
        futures = [pool.submit(start) for start in starts]
        concurrent.futures.wait(futures)
    failed = [f.exception() for f in futures if f.exception() is not None]
    if failed:
        for f in futures:
            if f.exception() is None:
                f.result().stop()
        raise RuntimeError(f"a server did not start: {failed[0]!r}") from failed[0]
    return [f.result() for f in futures]


def check_answers(servers: list[Server], path: str) -> dict[str, int]:
    """Every server answers the endpoint with 200 before it is loaded (else the figures lie)."""
    statuses = {s.name: httpx.get(s.url + path, timeout=120).status_code for s in servers}
    bad = {name: status for name, status in statuses.items() if status != 200}
    if bad:
        raise RuntimeError(f"GET {path}: not 200 on {bad}")
    return statuses


def read_runner(path: str, plan: Plan) -> Any:
    def run(server: Server, seconds: float, _round: int) -> WrkResult:
        return run_wrk(
            server.url + path, seconds, connections=plan.connections, script=READ_SCRIPT, cpus=plan.generator_cpus
        )

    return run


def bench_reads(servers: list[Server], plan: Plan) -> list[dict[str, Any]]:
    out = []
    for i, ep in enumerate(READS):
        # Quick mode: the floor only where the targets compare with it (list..runs).
        with_floor = ep.floor and not (plan.warmup_once and ep.name in QUICK_NO_FLOOR)
        targets = [s for s in servers if with_floor or s.name != "floor"]
        check_answers(targets, ep.path)
        print(f"[bench] GET {ep.path}", file=sys.stderr, flush=True)
        results = alternate(targets, plan, read_runner(ep.path, plan), warm=i == 0 or not plan.warmup_once)
        out.append(
            {
                "name": ep.name,
                "label": ep.label,
                "kind": "read",
                "request": f"GET {ep.path}",
                "servers": results,
                "ratios": {
                    "native/legacy": ratio(results.get("native"), results.get("legacy")),
                    "native/floor": ratio(results.get("native"), results.get("floor")),
                },
            }
        )
    return out


def bench_writes(dsn: str, servers: list[Server], plan: Plan) -> list[dict[str, Any]]:
    out = []
    # Deletes use each id once: the pool holds more than the fastest server could delete.
    delete_pool = int(4000 * (plan.warmup_s + plan.rounds * plan.seconds)) + 1000
    for server in servers:
        dataset.add_write_pool(dsn, f"bench-w-{server.name}-", RENAME_POOL)
        dataset.add_write_pool(dsn, f"bench-d-{server.name}-", delete_pool)
    dataset.analyze(dsn)
    for i, kind in enumerate(WRITES):
        used: dict[str, int] = {s.name: 0 for s in servers}

        def run(
            server: Server, seconds: float, _round: int, kind: str = kind, used: dict[str, int] = used
        ) -> WrkResult:
            if kind == "delete":
                script_args = [kind, f"bench-d-{server.name}-", str(used[server.name]), str(delete_pool), "1"]
            else:
                script_args = [kind, f"bench-w-{server.name}-", "0", str(RENAME_POOL), "1"]
            result = run_wrk(
                server.url,
                seconds,
                connections=plan.connections,
                script=WRITE_SCRIPT,
                script_args=script_args,
                cpus=plan.generator_cpus,
            )
            used[server.name] += result.requests
            return result

        print(f"[bench] write {kind}", file=sys.stderr, flush=True)
        results = alternate(servers, plan, run, warm=i == 0 or not plan.warmup_once)
        if kind == "delete":
            for name, n in used.items():
                results[name]["ids_exhausted"] = n > delete_pool
        out.append(
            {
                "name": kind,
                "label": WRITE_LABELS[kind],
                "kind": "write",
                "request": {
                    "create": "POST /sessions?type=agent",
                    "rename": "POST /sessions/{id}/rename?type=agent",
                    "patch": "PATCH /sessions/{id}?type=agent",
                    "delete": "DELETE /sessions/{id}",
                }[kind],
                "servers": results,
                "ratios": {"native/legacy": ratio(results.get("native"), results.get("legacy"))},
            }
        )
    return out


def bench_gateway(
    pg: Any, native: Server, legacy: Server, plan: Plan, logs: Path, server_cpus: str
) -> list[dict[str, Any]]:
    """Native direct vs the gateway at stage `native`, and at `primary` mirroring 0 % / 100 %
    of reads to legacy. The three gateways run at once, each with its own store database."""
    configs = (
        ("gateway_native", "native", 1.0),
        ("gateway_primary_0", "primary", 0.0),
        ("gateway_primary_100", "primary", 1.0),
    )
    gateways: list[Server] = []
    try:
        stores = {name: create_store_database(pg.admin_dsn, f"bench_{name}") for name, _stage, _rate in configs}
        gateways += started_together(
            *(
                functools.partial(start_gateway, name, pg.main_dsn, stores[name], legacy.url, stage, rate, logs)
                for name, stage, rate in configs
            )
        )
        pin_all(gateways, server_cpus)
        out = []
        # Quick mode: only the detail (the list is the slowest, so the least informative per second).
        for i, ep_name in enumerate(GATEWAY_ENDPOINTS[-1:] if plan.warmup_once else GATEWAY_ENDPOINTS):
            ep = next(e for e in READS if e.name == ep_name)
            targets = [native, *gateways]
            check_answers(targets, ep.path)
            print(f"[bench] gateway GET {ep.path}", file=sys.stderr, flush=True)
            results = alternate(targets, plan, read_runner(ep.path, plan), warm=i == 0 or not plan.warmup_once)
            mirrored = httpx.get(gateways[2].url + "/metrics", timeout=10).text
            out.append(
                {
                    "name": ep.name,
                    "label": ep.label,
                    "request": f"GET {ep.path}",
                    "servers": results,
                    "ratios": {f"{g.name}/native": ratio(results[g.name], results["native"]) for g in gateways},
                    "p50_added_ms": {
                        g.name: round(results[g.name]["p50_ms"] - results["native"]["p50_ms"], 3) for g in gateways
                    },
                    "mirror_metrics": report.metric_lines(
                        mirrored, ("shadow_comparisons_total", "shadow_mirror_skipped_total")
                    ),
                }
            )
        return out
    finally:
        for g in gateways:
            g.stop()


def bench_comparator(seconds: float) -> dict[str, Any]:
    """pairs/s of the comparator on 2 KB `GET /sessions` pages (benchmarks/comparator_speed.py)."""
    import random

    from comparator import Response, Rules, compare

    from . import comparator_speed as cs

    rules = Rules.load(str(_harness.REPO_ROOT / "config" / "comparator.yaml"))
    base = cs.page_of_size(2048)
    body = cs.encode(base)
    same = Response(200, cs.HEADERS, body)
    equal = Response(200, cs.HEADERS, bytes(bytearray(body)))  # equal bytes, another object
    one = Response(200, cs.HEADERS, cs.encode(cs.mutate_one(base, random.Random(7))))
    return {
        "body_bytes": len(body),
        "identical_pairs_per_s": round(cs.rate(lambda: compare(same, equal, rules, request=cs.REQUEST), seconds)),
        "one_diff_pairs_per_s": round(cs.rate(lambda: compare(same, one, rules, request=cs.REQUEST), seconds)),
    }


def note(given: str | None, machine: dict[str, Any]) -> str | None:
    """What the reader must know next to the figures: the given note, and a busy machine."""
    notes = [given] if given else []
    load = machine.get("load_average_at_start") or [0.0]
    if load[0] > 0.5 * (machine.get("cpus") or 1):
        notes.append(
            f"The machine was busy when the suite started (1-minute load average {load[0]:.1f} on "
            f"{machine.get('cpus')} CPUs): other work competed for the cores, so absolute figures are low "
            "and noisy; compare ratios within this run only, and rerun on a quiet machine."
        )
    return " ".join(notes) or None


def header(args: argparse.Namespace, argv: list[str] | None, cores: Cores, started: float) -> dict[str, Any]:
    """The results' first keys: what ran, how, where (the measurements are added to it)."""
    return {
        "schema": report.SCHEMA_ID,
        "mode": args.mode,
        **report.run_identity("benchmarks.suite", argv, started),
        "settings": {
            "sessions": args.sessions,
            "seconds": args.seconds,
            "warmup_s": args.warmup,
            "warmup_once_per_part": args.quick,
            "rounds": args.rounds,
            "connections": args.connections,
            "wrk_threads": 1,
            "generator_cpus": cores.generator,
            "server_cpus": cores.server,
            "shared_core": cores.generator == cores.server,
        },
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not wrk_available():
        print("wrk is not installed: run `make tools` (Debian package wrk)", file=sys.stderr)
        return 2
    parts = set(args.only.split(","))
    started = time.time()
    cores = Cores.split()
    plan = Plan(args.seconds, args.warmup, args.rounds, args.connections, cores.generator, warmup_once=args.quick)
    logs = log_dir()
    pg = _harness.PgServer()
    openai_url, stop_openai = _harness.start_fake_openai()
    servers: list[Server] = []
    results = header(args, argv, cores, started)
    phases: dict[str, float] = {}
    results["phase_seconds"] = phases

    @contextlib.contextmanager
    def phase(name: str) -> Iterator[None]:
        t0 = time.monotonic()
        try:
            yield
        finally:
            phases[name] = round(time.monotonic() - t0, 1)

    try:
        print("[bench] seeding through agno", file=sys.stderr, flush=True)
        with phase("seed"):
            _harness.seed(pg.main_dsn, openai_url)
        sizes = (20, 1000) if not args.growth else tuple(sorted({20, 1000, *map(int, args.growth_runs.split(","))}))
        with phase("copy"):
            counts = dataset.build(pg.main_dsn, args.sessions, sizes)
        results["dataset"] = {"sessions": counts.sessions, "runs": counts.runs, "runs_sessions": list(sizes)}
        with phase("start"):
            servers = started_together(
                lambda: start_legacy(pg.main_dsn, openai_url),
                lambda: start_native_server(pg.main_dsn),
                lambda: start_floor(pg.main_dsn, logs),
            )
        pin_all(servers, cores.server)
        legacy, native, floor = servers
        if "reads" in parts:
            with phase("reads"):
                results["reads"] = bench_reads(servers, plan)
        if "gateway" in parts:
            with phase("gateway"):
                results["gateway"] = bench_gateway(pg, native, legacy, plan, logs, cores.server)
        if "writes" in parts:
            with phase("writes"):
                results["writes"] = bench_writes(pg.main_dsn, [legacy, native], plan)
        if "comparator" in parts:
            with phase("comparator"):
                results["comparator"] = bench_comparator(0.5 if args.quick else 2.0)
        if args.growth:  # last: it grows the table past --sessions
            from . import growth

            with phase("growth"):
                results["growth"] = growth.run(pg.main_dsn, legacy, native, plan, args)
        results["peak_rss_mib"] = report.peak_rss(results)
    finally:
        for server in reversed(servers):
            server.stop()
        stop_openai()
        pg.stop()
    results["seconds_total"] = round(time.time() - started, 1)
    results["note"] = note(args.note, results["machine"])
    report.validate(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report.dumps(results))
    text = report.markdown(results)
    print(text)
    if not args.no_docs:
        report.write_docs(args.docs, text, args.mode)
    print(f"[bench] results: {args.out}; {args.seconds} s rounds, {results['seconds_total']} s in all", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
