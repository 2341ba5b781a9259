"""Growth (issue 12, item 4; measuring only): latency of list, filtered list, detail and runs
as the sessions table grows and as a session's runs grow, AgentOS and native side by side, with
the EXPLAIN ANALYZE plans of the native service's statements at each size."""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import replace
from typing import Any

import asyncpg

from . import dataset, floor
from .measure import Plan, alternate
from .servers import Server

GROWTH_CONNECTIONS = 4
SIZE_ENDPOINTS = {
    "list": "/sessions?limit=20&page=1",
    "list_filtered": "/sessions?type=agent&user_id=bench-user-7",
    "detail": f"/sessions/{dataset.runs_session_id(20)}",
    "runs": f"/sessions/{dataset.runs_session_id(20)}/runs",
}

# The native statements (the floor's copies, tested equal to the store's) and their arguments.
PLANS: dict[str, tuple[str, tuple[Any, ...]]] = {
    "list": (floor.LIST, (20, 0)),
    "filtered list": (floor.FILTERED, ("bench-user-7", "agent", 20, 0)),
    "sorted list": (floor.SORTED, (20, 0)),
    "detail: session": (floor.GET_SESSION, (dataset.runs_session_id(20),)),
    "detail: runs": (floor.RUNS_OF_SESSION, (dataset.runs_session_id(20),)),
    "run by id": (
        floor.SESSION_WITH_RUN,
        (dataset.runs_session_id(20), dataset.run_id_of(dataset.runs_session_id(20), 7)),
    ),
}


async def explain(dsn: str) -> dict[str, str]:
    conn = await asyncpg.connect(dsn)
    try:
        out = {}
        for name, (sql, params) in PLANS.items():
            rows = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + sql, *params)
            out[name] = "\n".join(r[0] for r in rows)
        return out
    finally:
        await conn.close()


def _measure(servers: list[Server], plan: Plan, path: str) -> dict[str, Any]:
    from .suite import check_answers, read_runner

    check_answers(servers, path)
    results = alternate(servers, plan, read_runner(path, plan))
    return {
        name: {k: s[k] for k in ("rps", "p50_ms", "p99_ms", "errors", "peak_rss_mib")} for name, s in results.items()
    }


def run(dsn: str, legacy: Server, native: Server, plan: Plan, args: argparse.Namespace) -> dict[str, Any]:
    """Measure at every size of `args.growth_sizes`, then every runs count of `args.growth_runs`."""
    # Latency, not capacity: few connections, so p50 is close to one request's time (and a
    # 1,000-run session on AgentOS leaves no long backlog when a round ends).
    plan = replace(plan, rounds=max(1, min(plan.rounds, 2)), connections=min(plan.connections, GROWTH_CONNECTIONS))
    servers = [legacy, native]
    by_size: list[dict[str, Any]] = []
    for size in sorted(int(s) for s in args.growth_sizes.split(",")):
        print(f"[bench] growth: {size:,} sessions", file=sys.stderr, flush=True)
        dataset.grow_to(dsn, size)
        counts = dataset.counts(dsn)
        entry: dict[str, Any] = {"sessions": counts.sessions, "runs": counts.runs, "endpoints": {}}
        for name, path in SIZE_ENDPOINTS.items():
            entry["endpoints"][name] = _measure(servers, plan, path)
        entry["plans"] = asyncio.run(explain(dsn))
        by_size.append(entry)
    by_runs: list[dict[str, Any]] = []
    for n in sorted(int(s) for s in args.growth_runs.split(",")):
        sid = dataset.runs_session_id(n)
        print(f"[bench] growth: a {n}-run session", file=sys.stderr, flush=True)
        by_runs.append(
            {
                "runs": n,
                "endpoints": {
                    "detail": _measure(servers, plan, f"/sessions/{sid}"),
                    "runs": _measure(servers, plan, f"/sessions/{sid}/runs"),
                },
            }
        )
    return {"connections": plan.connections, "by_sessions": by_size, "by_runs": by_runs}


def _cell(ep: dict[str, Any]) -> str:
    legacy, native = ep.get("legacy"), ep.get("native")
    if not legacy or not native:
        return "–"

    def p50(side: dict[str, Any]) -> str:
        return f"{side['p50_ms']:.1f}" if side["rps"] else "no answer within a round"

    def p99(side: dict[str, Any]) -> str:
        return f"{side['p99_ms']:.0f}" if side["rps"] else "–"

    return f"{p50(legacy)} / {p50(native)} ({p99(legacy)} / {p99(native)})"


def markdown(growth: dict[str, Any]) -> list[str]:
    out = [
        "#### Growth: p50 ms AgentOS / native (p99 in brackets)",
        "",
        f"wrk with {growth.get('connections', GROWTH_CONNECTIONS)} connections (latency, not capacity), the same "
        "rounds and alternation as above; the detail and runs columns are the 20-run session.",
        "",
        "| sessions | runs | " + " | ".join(SIZE_ENDPOINTS) + " |",
        "|---|---|" + "---|" * len(SIZE_ENDPOINTS),
    ]
    for entry in growth["by_sessions"]:
        cells = [_cell(entry["endpoints"][name]) for name in SIZE_ENDPOINTS]
        out.append(f"| {entry['sessions']:,} | {entry['runs']:,} | " + " | ".join(cells) + " |")
    out += ["", "| runs in the session | detail | runs |", "|---|---|---|"]
    for entry in growth["by_runs"]:
        out.append(
            f"| {entry['runs']:,} | {_cell(entry['endpoints']['detail'])} | {_cell(entry['endpoints']['runs'])} |"
        )
    out += ["", "EXPLAIN (ANALYZE, BUFFERS) of the native service's statements, at each size:"]
    for entry in growth["by_sessions"]:
        out += ["", f"<details><summary>{entry['sessions']:,} sessions</summary>", ""]
        for name, plan_text in entry["plans"].items():
            out += [f"{name}:", "", "```", plan_text, "```", ""]
        out.append("</details>")
    return out
