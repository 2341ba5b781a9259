"""Alternating rounds: every server runs the same endpoint in turn, after a warm-up each.

Per (endpoint, server) the suite keeps every round (req/s, p50, p99, errors) and the peak RSS
of the server process during those rounds; the summary is the median round, with the min-max
spread, because one round on a shared two-core machine says little on its own.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .loadgen import WrkResult, peak_rss_mib, reset_peak_rss, settle
from .servers import Server


@dataclass(frozen=True)
class Plan:
    seconds: float
    warmup_s: float
    rounds: int
    connections: int
    generator_cpus: str | None
    # Quick mode: warm each server up once per part (its first endpoint), not before every one.
    warmup_once: bool = False


def summarize(rounds: Sequence[WrkResult]) -> dict[str, Any]:
    """Median and spread over rounds (rps, p50, p99) and the errors summed."""
    out: dict[str, Any] = {}
    for key in ("rps", "p50_ms", "p99_ms"):
        values = [getattr(r, key) for r in rounds]
        out[key] = statistics.median(values)
        out[f"{key}_min"] = min(values)
        out[f"{key}_max"] = max(values)
    out["errors"] = sum(r.error_count for r in rounds)
    out["requests"] = sum(r.requests for r in rounds)
    return out


# A run: (server, seconds) -> result. Reads pass a URL, writes a script and its arguments.
Runner = Callable[[Server, float, int], WrkResult]


def alternate(servers: Sequence[Server], plan: Plan, run: Runner, *, warm: bool = True) -> dict[str, dict[str, Any]]:
    """Warm each server up, then `plan.rounds` rounds of all servers, the order rotated per
    round so none always goes first. `run(server, seconds, round_index)`; round -1 is warm-up."""
    rounds: dict[str, list[WrkResult]] = {s.name: [] for s in servers}
    peaks: dict[str, float] = {}
    resettable = {s.name: reset_peak_rss(s.pid) for s in servers}
    for server in servers:
        if warm and plan.warmup_s > 0:
            run(server, plan.warmup_s, -1)
            settle(server.pid)
    for i in range(plan.rounds):
        order = list(servers[i % len(servers) :]) + list(servers[: i % len(servers)])
        for server in order:
            rounds[server.name].append(run(server, plan.seconds, i))
            settle(server.pid)  # its backlog must not run into the next server's round
    for server in servers:
        peaks[server.name] = peak_rss_mib(server.pid)
    return {
        s.name: {
            "rounds": [r.as_dict() for r in rounds[s.name]],
            **summarize(rounds[s.name]),
            "peak_rss_mib": round(peaks[s.name], 1),
            "peak_rss_since": "warm-up" if resettable[s.name] else "process start",
        }
        for s in servers
    }


def ratio(a: dict[str, Any] | None, b: dict[str, Any] | None) -> dict[str, float] | None:
    """a/b for throughput and latency (median rounds); None when either side is missing."""
    if not a or not b or not b.get("rps") or not b.get("p99_ms") or not b.get("p50_ms"):
        return None
    return {
        "rps": round(a["rps"] / b["rps"], 3),
        "p50": round(a["p50_ms"] / b["p50_ms"], 3),
        "p99": round(a["p99_ms"] / b["p99_ms"], 3),
    }
