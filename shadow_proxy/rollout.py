"""Where each route group stands: its stage, the windows the parity gate judges it by, and the
decisions that move it, shared by every replica through the store.

- the stage of each group, from the configuration until the store holds one (any replica's
  decision wins, adopted by polling every `rollout.poll_s` and at once on a NOTIFY);
- `set_stage`: a change by hand (the admin view) or by the gate, stored first, then applied;
- `gate_step`: one round of the parity gate (shadow_proxy/gate.py) over every group, judged on
  the evidence of every replica: each adds its verdicts to the store's buckets (`flush`, every
  `gate.flush_s` and before each round) and judges their sum over the window. Every replica
  may reach the same decision; the compare-and-set on the stage applies it once.

Without a legacy side every group is at `native`, whatever is configured or stored.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import replace
from typing import Any

import asyncpg

from .config import GatewayConfig, Group, Stage
from .gate import Combined, Evidence, GroupWindows, Pending, combine, decide, progress
from .metrics import GatewayMetrics
from .model import Decision
from .routestats import BUCKET_S, KEEP_S, RouteStats
from .store import CHANNEL, GatewayStore

log = logging.getLogger("shadow_proxy")

# Stage -> (primary side, shadow side): who answers the clients, who gets the mirrored copy.
PLAN: dict[Stage, tuple[str, str | None]] = {
    "legacy": ("legacy", None),
    "shadow": ("legacy", "native"),
    "primary": ("native", "legacy"),
    "native": ("native", None),
}


class Rollout:
    """The stages of the groups, this replica's copy of the stored decisions."""

    def __init__(
        self, config: GatewayConfig, *, has_legacy: bool, store: GatewayStore | None, metrics: GatewayMetrics
    ) -> None:
        self.config = config
        self.has_legacy = has_legacy
        self.store = store
        self.metrics = metrics
        why = "initial stage from the configuration" if has_legacy else "no legacy side: all native"
        self.stages: dict[str, Decision] = {
            g.name: Decision(g.name, None, self.allowed(g.stage), why, "config") for g in config.groups
        }
        # What the gate judges: fed by the hot path (native's failures) and the mirror (verdicts);
        # with a store, the same verdicts also go to `pending`, this replica's share of the evidence.
        self.pending = Pending(config.gate.bucket_s) if store is not None else None
        # What the report charts (per route: results by cohort, latency by side), flushed alike.
        self.stats = RouteStats(BUCKET_S) if store is not None else None
        self.windows = {g.name: GroupWindows.sized(config.gate.window, g.name, self.pending) for g in config.groups}
        # The last evidence of all replicas judged per group (for the views).
        self.combined: dict[str, Combined] = {}
        for group in config.groups:
            metrics.set_stage(group.routes, self.stages[group.name].to_stage)
            self.windows[group.name].stage = self.stages[group.name].to_stage

    def allowed(self, stage: Stage) -> Stage:
        return stage if self.has_legacy else "native"

    def stage_of(self, group: Group | None) -> Stage:
        if group is None:  # outside every group: legacy's, unmirrored (native if there is no legacy)
            return "legacy" if self.has_legacy else "native"
        return self.stages[group.name].to_stage

    def apply(self, stored: dict[str, Decision]) -> None:
        """Adopt the stored stages (from any replica); a changed group starts fresh windows."""
        for group in self.config.groups:
            decision = stored.get(group.name)
            if decision is None:
                continue
            decision = replace(decision, to_stage=self.allowed(decision.to_stage))
            if decision.to_stage != self.stages[group.name].to_stage:
                log.info(
                    "group %s is now at stage %s (%s, by %s)",
                    group.name,
                    decision.to_stage,
                    decision.reason,
                    decision.by,
                )
                self.windows[group.name].reset()
                self.combined.pop(group.name, None)
                self.metrics.set_stage(group.routes, decision.to_stage)
            self.stages[group.name] = decision
            self.windows[group.name].stage = decision.to_stage

    async def refresh(self) -> None:
        if self.store is not None:
            self.apply(await self.store.stages())

    async def set_stage(self, group: str, stage: Stage, reason: str, by: str, expect: Stage | None = None) -> bool:
        """Apply a stage change for every replica (through the store), then here."""
        current = self.stages[group].to_stage
        decision = Decision(group, current, stage, reason, by, time.time())
        if self.store is not None:
            if not await self.store.set_stage(decision, expect=expect):
                return False
        self.metrics.decisions.labels(group, current, stage, by).inc()
        log.info("stage of %s: %s -> %s by %s: %s", group, current, stage, by, reason)
        self.apply({group: decision})
        return True

    async def flush(self) -> None:
        """Add this replica's pending verdicts to the store's shared buckets, then the report's
        per-route counts (the gate's first: they decide stages). On failure they are kept for
        the next flush (and the error counted): evidence is delayed, not lost."""
        if self.pending is not None and self.store is not None and self.pending.counts:
            taken = self.pending.take()
            gate = self.config.gate
            try:
                await self.store.add_counts(taken, keep_s=gate.window_s + 2 * gate.bucket_s)
            except BaseException:
                self.pending.restore(taken)
                self.metrics.store_errors.inc()
                raise
        if self.stats is not None and self.store is not None and self.stats:
            stats = self.stats.take()
            try:
                await self.store.add_route_stats(stats, keep_s=KEEP_S)
            except BaseException:
                self.stats.restore(stats)
                self.metrics.store_errors.inc()
                raise

    async def evidence(self, group: str) -> Evidence:
        """What the gate judges for `group`: every replica's buckets at its current stage since
        that stage was decided (and within `gate.window_s`), or this replica's windows when there
        is no store."""
        if self.store is None:
            return self.windows[group]
        gate, decision = self.config.gate, self.stages[group]
        since = max(decision.at, time.time() - gate.window_s)
        combined = combine(await self.store.buckets(group, decision.to_stage, since, gate.bucket_s), gate.window)
        self.combined[group] = combined
        return combined

    async def gate_step(self) -> list[Decision]:
        """One round of the parity gate over every group (this replica's verdicts flushed first,
        so they are part of it); returns the decisions applied here."""
        await self.flush()
        applied = []
        for group in self.config.groups:
            current = self.stages[group.name].to_stage
            decision = decide(group.name, current, await self.evidence(group.name), self.config.gate)
            if decision is None or (decision.to_stage != "native" and not self.has_legacy):
                continue
            if await self.set_stage(group.name, decision.to_stage, decision.reason, "gate", expect=current):
                applied.append(decision)
        return applied

    def groups_view(self) -> dict[str, dict[str, Any]]:
        """Each group's stage, who decided it and why, and its gate windows (for the views)."""
        return {
            g.name: {
                "stage": self.stages[g.name].to_stage,
                "routes": list(g.routes),
                "decided_by": self.stages[g.name].by,
                "reason": self.stages[g.name].reason,
                "sample_rate": g.sample_rate,
                "window": {
                    "comparisons": self.windows[g.name].comparisons.total,
                    "mismatches": self.windows[g.name].comparisons.failures,
                    "native_calls": self.windows[g.name].native_calls.total,
                    "native_errors": self.windows[g.name].native_calls.failures,
                },
                "combined": self._combined_view(g.name),
                # Toward promotion (or rollback), on every replica's evidence once judged.
                "progress": progress(
                    self.stages[g.name].to_stage, self.combined.get(g.name) or self.windows[g.name], self.config.gate
                )
                | {"evidence": "all replicas" if g.name in self.combined else "this replica"},
            }
            for g in self.config.groups
        }

    def _combined_view(self, group: str) -> dict[str, int] | None:
        """Every replica's evidence as the gate last judged it (None before its first round)."""
        combined = self.combined.get(group)
        if combined is None:
            return None
        return {
            "comparisons": combined.comparisons.total,
            "mismatches": combined.comparisons.failures,
            "native_calls": combined.native_calls.total,
            "native_errors": combined.native_calls.failures,
        }

    async def listen(self, dsn: str) -> asyncpg.Connection | None:
        """LISTEN for stage changes made by other replicas (polling covers a lost connection)."""
        try:
            conn = await asyncpg.connect(dsn)
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("no LISTEN connection (%s); stage changes arrive by polling only", exc)
            return None

        def on_notify(*_: Any) -> None:
            asyncio.get_running_loop().create_task(self.refresh())

        await conn.add_listener(CHANNEL, on_notify)
        return conn

    def loops(self) -> list[Callable[[], Coroutine[Any, Any, None]]]:
        """The background rounds: the stage poll, and the gate when it is enabled."""
        rounds: list[Callable[[], Coroutine[Any, Any, None]]] = [
            lambda: every(self.config.rollout.poll_s, self.refresh, "stage poll")
        ]
        if self.pending is not None:  # a replica without the gate still adds its evidence
            rounds.append(lambda: every(self.config.gate.flush_s, self.flush, "gate counts flush"))
        if self.config.gate.enabled:
            rounds.append(lambda: every(self.config.gate.interval_s, self._gate_round, "parity gate"))
        return rounds

    async def _gate_round(self) -> None:
        await self.gate_step()


async def every(seconds: float, step: Callable[[], Awaitable[Any]], name: str) -> None:
    """`step()` every `seconds`, for ever; a failed round is logged and the next one tried."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except Exception:  # a failed round (the database away for a moment) must not end the loop
            log.exception("%s failed; retrying in %.1f s", name, seconds)
