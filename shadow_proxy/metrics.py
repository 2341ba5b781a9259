"""The gateway's Prometheus metrics, one registry per app (no global state). Labels are
bounded: `route` is a route template (`GET /sessions/{session_id}`), never a raw path; `path`
is a difference template (`data[*].session_name`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from .config import STAGES

# Public: the report counts latency in the same buckets (shadow_proxy/routestats.py).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class GatewayMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter(
            "shadow_requests",
            "Upstream answers, by side (primary path and mirrored copies)",
            ["route", "stage", "side", "code_class"],
            registry=r,
        )
        self.comparisons = Counter("shadow_comparisons", "Compared pairs by result", ["route", "result"], registry=r)
        self.mismatch_paths = Counter(
            "shadow_mismatch_paths", "Mismatches by differing path template", ["route", "path"], registry=r
        )
        self.mirror_skipped = Counter(
            "shadow_mirror_skipped", "Requests not mirrored, by reason", ["route", "reason"], registry=r
        )
        # `side`: the side that answered instead. `legacy` at primary/native (native failed);
        # `native` at shadow, for a group with `fallback_to_native` (legacy was unavailable).
        self.fallbacks = Counter(
            "shadow_fallbacks",
            "Failures of the primary side answered by the other side instead (side: who answered)",
            ["route", "reason", "side"],
            registry=r,
        )
        self.upstream_duration = Histogram(
            "shadow_upstream_duration_seconds",
            "Upstream latency by side",
            ["route", "side"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.stage = Gauge("shadow_stage", "1 for the current stage of the route", ["route", "stage"], registry=r)
        self.parity_ratio = Gauge(
            "shadow_parity_ratio", "match / (match + mismatch) over the gate's window", ["route"], registry=r
        )
        self.mirror_inflight = Gauge("shadow_mirror_inflight", "Mirrored copies being sent or compared", registry=r)
        self.mirror_queue = Gauge("shadow_mirror_queue_depth", "Mirrored copies waiting", registry=r)
        self.decisions = Counter(
            "shadow_stage_decisions",
            "Stage changes, by who decided",
            ["group", "from_stage", "to_stage", "by"],
            registry=r,
        )
        self.store_errors = Counter("shadow_store_errors", "Samples that could not be stored", registry=r)
        self.record_errors = Counter(
            "shadow_record_errors", "Sampled requests the recorder could not write (shadow.record)", registry=r
        )
        self.record_dropped = Counter(
            "shadow_record_dropped", "Sampled requests not recorded: the file reached record_max_bytes", registry=r
        )
        self.rechecks = Counter(
            "shadow_rechecks",
            "Mismatches on reads asked again: confirmed, or cleared "
            "(a write in between had made the first answers differ)",
            ["route", "outcome"],
            registry=r,
        )
        self.ready = Gauge(
            "shadow_ready",
            "1 when the dependency (store, native, legacy) answered at the last readiness check, else 0",
            ["dependency"],
            registry=r,
        )

        self.unmapped_db_ids = Gauge(
            "shadow_unmapped_db_ids",
            "db ids the legacy AgentOS serves that native cannot (their requests fall back to legacy); "
            "the ids and the fix are in /readyz under db_ids",
            registry=r,
        )

    def set_stage(self, routes: tuple[str, ...], stage: str) -> None:
        for route in routes:
            for name in STAGES:
                self.stage.labels(route, name).set(1.0 if name == stage else 0.0)


def code_class(status: int) -> str:
    """`2xx`.. `5xx`; `error` for no HTTP answer at all (connection refused, timeout)."""
    return f"{status // 100}xx" if status else "error"
