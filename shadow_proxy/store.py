"""All of the gateway's SQL: the mismatch samples (`shadow_mismatches`), the rollout stage
of each route group (`shadow_rollout`, with its history in `shadow_rollout_events`), and the
parity gate's evidence (`shadow_gate_counts`: per group, stage and time bucket, the sums of every
replica's verdicts, so one decision is taken on all of the traffic), and what the report charts
(`shadow_route_counts`: comparisons per route, bucket, cohort and result; `shadow_latency_counts`:
each side's latency histogram per route and bucket; both summed over replicas and pruned by age). Bound
parameters only. Every replica of the gateway shares these tables: a stage written by one is
announced to the others with NOTIFY on `shadow_rollout` (and they poll as well)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import asyncpg

from .gate import Bucket
from .model import Decision, Sample
from .routestats import RouteStats

CHANNEL = "shadow_rollout"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS shadow_mismatches (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL,
    request_id  text NOT NULL,
    route       text NOT NULL,
    route_group text NOT NULL,
    stage       text NOT NULL,
    origin      text NOT NULL,
    result      text NOT NULL,
    paths       text[] NOT NULL,
    sample      jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS shadow_mismatches_at ON shadow_mismatches (at);
CREATE INDEX IF NOT EXISTS shadow_mismatches_route_at ON shadow_mismatches (route, at);
CREATE TABLE IF NOT EXISTS shadow_rollout (
    route_group text PRIMARY KEY,
    stage       text NOT NULL,
    reason      text NOT NULL,
    decided_by  text NOT NULL,
    decided_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS shadow_rollout_events (
    id          bigserial PRIMARY KEY,
    route_group text NOT NULL,
    from_stage  text,
    to_stage    text NOT NULL,
    reason      text NOT NULL,
    decided_by  text NOT NULL,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS shadow_gate_counts (
    route_group   text NOT NULL,
    stage         text NOT NULL,
    bucket        timestamptz NOT NULL,
    agreed        bigint NOT NULL DEFAULT 0,
    mismatches    bigint NOT NULL DEFAULT 0,
    native_calls  bigint NOT NULL DEFAULT 0,
    native_errors bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (route_group, stage, bucket)
);
CREATE TABLE IF NOT EXISTS shadow_route_counts (
    route   text NOT NULL,
    bucket  timestamptz NOT NULL,
    cohort  text NOT NULL,
    value   text NOT NULL,
    result  text NOT NULL,
    n       bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (route, bucket, cohort, value, result)
);
CREATE INDEX IF NOT EXISTS shadow_route_counts_bucket ON shadow_route_counts (bucket);
CREATE TABLE IF NOT EXISTS shadow_latency_counts (
    route   text NOT NULL,
    side    text NOT NULL,
    bucket  timestamptz NOT NULL,
    le      double precision NOT NULL,
    n       bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (route, side, bucket, le)
);
CREATE INDEX IF NOT EXISTS shadow_latency_counts_bucket ON shadow_latency_counts (bucket);
"""


def _ts(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


class GatewayStore:
    """The gateway's tables, through one asyncpg pool."""

    def __init__(self, pool: asyncpg.Pool, max_samples: int, max_age_s: float) -> None:
        self.pool = pool
        self.max_samples = max_samples
        self.max_age_s = max_age_s

    async def ensure_schema(self) -> None:
        """Create the tables if missing; replicas starting together take turns (advisory lock)."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('shadow_proxy.schema'))")
            await conn.execute(_SCHEMA)

    # ---- mismatch samples ---------------------------------------------------------------------

    async def record(self, sample: Sample) -> None:
        """Store one (already redacted) sample, then apply retention by age and by count."""
        paths = sorted({d.template for d in sample.comparison.differences})
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO shadow_mismatches (at, request_id, route, route_group, stage, origin, result, paths, sample) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::text::jsonb)",
                _ts(sample.at),
                sample.request_id,
                sample.route,
                sample.group,
                sample.stage,
                sample.origin,
                sample.comparison.result,
                paths,
                json.dumps(sample.to_dict(), default=str),
            )
            await conn.execute("DELETE FROM shadow_mismatches WHERE at < $1", _ts(time.time() - self.max_age_s))
            await conn.execute(
                "DELETE FROM shadow_mismatches WHERE id <= (SELECT id FROM shadow_mismatches ORDER BY id DESC OFFSET $1 LIMIT 1)",
                self.max_samples,
            )

    async def mismatches(
        self,
        *,
        route: str | None = None,
        path: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Newest first. `path` is a difference template (`data[*].session_name`)."""
        rows = await self.pool.fetch(
            "SELECT id, sample FROM shadow_mismatches WHERE ($1::text IS NULL OR route = $1) "
            "AND ($2::text IS NULL OR $2 = ANY(paths)) AND ($3::timestamptz IS NULL OR at >= $3) "
            "AND ($4::timestamptz IS NULL OR at <= $4) ORDER BY id DESC LIMIT $5",
            route,
            path,
            _ts(since),
            _ts(until),
            limit,
        )
        return [{"id": row["id"], **json.loads(row["sample"])} for row in rows]

    async def top_paths(self, limit: int = 20) -> list[dict[str, Any]]:
        """The difference templates found most often in the stored samples, per route."""
        rows = await self.pool.fetch(
            "SELECT route, path, count(*) AS n FROM shadow_mismatches, unnest(paths) AS path "
            "GROUP BY route, path ORDER BY n DESC, route, path LIMIT $1",
            limit,
        )
        return [{"route": r["route"], "path": r["path"], "samples": r["n"]} for r in rows]

    # ---- rollout stages -----------------------------------------------------------------------

    async def seed_stages(self, initial: dict[str, str]) -> None:
        """The configured stage of a group applies only until a stage is stored for it."""
        async with self.pool.acquire() as conn, conn.transaction():
            for group, stage in initial.items():
                inserted = await conn.fetchval(
                    "INSERT INTO shadow_rollout (route_group, stage, reason, decided_by) VALUES ($1, $2, $3, 'config') "
                    "ON CONFLICT (route_group) DO NOTHING RETURNING route_group",
                    group,
                    stage,
                    "initial stage from the configuration",
                )
                if inserted:
                    await conn.execute(
                        "INSERT INTO shadow_rollout_events (route_group, from_stage, to_stage, reason, decided_by) "
                        "VALUES ($1, NULL, $2, $3, 'config')",
                        group,
                        stage,
                        "initial stage from the configuration",
                    )

    async def stages(self) -> dict[str, Decision]:
        """The stored stage of each group, as the decision that set it."""
        rows = await self.pool.fetch("SELECT route_group, stage, reason, decided_by, decided_at FROM shadow_rollout")
        return {
            r["route_group"]: Decision(
                r["route_group"], None, r["stage"], r["reason"], r["decided_by"], r["decided_at"].timestamp()
            )
            for r in rows
        }

    async def set_stage(self, decision: Decision, expect: str | None = None) -> bool:
        """Apply a decision, only if the group is still at `expect` (when given): two replicas
        deciding the same change at once apply it once. Announced with NOTIFY."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "UPDATE shadow_rollout SET stage = $2, reason = $3, decided_by = $4, decided_at = now() "
                "WHERE route_group = $1 AND ($5::text IS NULL OR stage = $5) RETURNING route_group",
                decision.group,
                decision.to_stage,
                decision.reason,
                decision.by,
                expect,
            )
            if row is None:
                return False
            await conn.execute(
                "INSERT INTO shadow_rollout_events (route_group, from_stage, to_stage, reason, decided_by) "
                "VALUES ($1, $2, $3, $4, $5)",
                decision.group,
                decision.from_stage,
                decision.to_stage,
                decision.reason,
                decision.by,
            )
            await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, decision.group)
        return True

    async def decisions(self, group: str | None = None, limit: int = 50) -> list[Decision]:
        rows = await self.pool.fetch(
            "SELECT route_group, from_stage, to_stage, reason, decided_by, at FROM shadow_rollout_events "
            "WHERE ($1::text IS NULL OR route_group = $1) ORDER BY id DESC LIMIT $2",
            group,
            limit,
        )
        return [
            Decision(
                r["route_group"], r["from_stage"], r["to_stage"], r["reason"], r["decided_by"], r["at"].timestamp()
            )
            for r in rows
        ]

    # ---- the gate's evidence ------------------------------------------------------------------

    async def add_counts(self, counts: dict[tuple[str, str, float], list[int]], keep_s: float) -> None:
        """Add one replica's increments to the shared buckets (an upsert that adds), then drop
        buckets older than `keep_s`. Rows in key order, so replicas flushing at once take the
        row locks in the same order (no deadlock)."""
        rows = [(g, st, _ts(start), *values) for (g, st, start), values in sorted(counts.items())]
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.executemany(
                "INSERT INTO shadow_gate_counts (route_group, stage, bucket, agreed, mismatches, native_calls, "
                "native_errors) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (route_group, stage, bucket) DO UPDATE "
                "SET agreed = shadow_gate_counts.agreed + EXCLUDED.agreed, "
                "mismatches = shadow_gate_counts.mismatches + EXCLUDED.mismatches, "
                "native_calls = shadow_gate_counts.native_calls + EXCLUDED.native_calls, "
                "native_errors = shadow_gate_counts.native_errors + EXCLUDED.native_errors",
                rows,
            )
            await conn.execute("DELETE FROM shadow_gate_counts WHERE bucket < $1", _ts(time.time() - keep_s))

    async def buckets(self, group: str, stage: str, since: float, bucket_s: float) -> list[Bucket]:
        """A group's buckets at `stage` that end after `since` (its stage's decision, or the
        window's time limit), newest first."""
        rows = await self.pool.fetch(
            "SELECT bucket, agreed, mismatches, native_calls, native_errors FROM shadow_gate_counts "
            "WHERE route_group = $1 AND stage = $2 AND bucket > $3 ORDER BY bucket DESC",
            group,
            stage,
            _ts(since - bucket_s),
        )
        return [
            Bucket(r["bucket"].timestamp(), r["agreed"], r["mismatches"], r["native_calls"], r["native_errors"])
            for r in rows
        ]

    # ---- what the report charts ---------------------------------------------------------------

    async def add_route_stats(self, stats: RouteStats, keep_s: float) -> None:
        """Add one replica's per-route counts to the shared buckets, then drop buckets older
        than `keep_s` (rows in key order, as `add_counts`, so replicas never deadlock)."""
        results = [(r, _ts(b), c, v, res, n) for (r, b, c, v, res), n in sorted(stats.results.items())]
        latency = [(r, side, _ts(b), le, n) for (r, side, b, le), n in sorted(stats.latency.items())]
        cutoff = _ts(time.time() - keep_s)
        async with self.pool.acquire() as conn, conn.transaction():
            if results:
                await conn.executemany(
                    "INSERT INTO shadow_route_counts (route, bucket, cohort, value, result, n) "
                    "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (route, bucket, cohort, value, result) "
                    "DO UPDATE SET n = shadow_route_counts.n + EXCLUDED.n",
                    results,
                )
            if latency:
                await conn.executemany(
                    "INSERT INTO shadow_latency_counts (route, side, bucket, le, n) VALUES ($1, $2, $3, $4, $5) "
                    "ON CONFLICT (route, side, bucket, le) DO UPDATE SET n = shadow_latency_counts.n + EXCLUDED.n",
                    latency,
                )
            await conn.execute("DELETE FROM shadow_route_counts WHERE bucket < $1", cutoff)
            await conn.execute("DELETE FROM shadow_latency_counts WHERE bucket < $1", cutoff)

    async def route_timeline(self, since: float) -> list[dict[str, Any]]:
        """Every route's comparisons per bucket and result since `since`, oldest first:
        [{route, bucket (epoch s), result, n}]."""
        rows = await self.pool.fetch(
            "SELECT route, bucket, result, n FROM shadow_route_counts WHERE cohort = 'all' AND bucket >= $1 "
            "ORDER BY route, bucket, result",
            _ts(since),
        )
        return [
            {"route": r["route"], "bucket": r["bucket"].timestamp(), "result": r["result"], "n": r["n"]} for r in rows
        ]

    async def cohort_counts(self, cohort: str, since: float) -> list[dict[str, Any]]:
        """Comparisons by route, cohort value and result since `since`: [{route, value, result, n}]."""
        rows = await self.pool.fetch(
            "SELECT route, value, result, sum(n)::bigint AS n FROM shadow_route_counts "
            "WHERE cohort = $1 AND bucket >= $2 GROUP BY route, value, result ORDER BY route, value, result",
            cohort,
            _ts(since),
        )
        return [{"route": r["route"], "value": r["value"], "result": r["result"], "n": r["n"]} for r in rows]

    async def latency_counts(self, since: float) -> list[dict[str, Any]]:
        """Each side's latency histogram per route since `since`: [{route, side, le, n}]."""
        rows = await self.pool.fetch(
            "SELECT route, side, le, sum(n)::bigint AS n FROM shadow_latency_counts WHERE bucket >= $1 "
            "GROUP BY route, side, le ORDER BY route, side, le",
            _ts(since),
        )
        return [{"route": r["route"], "side": r["side"], "le": r["le"], "n": r["n"]} for r in rows]

    async def mismatch(self, sample_id: int) -> dict[str, Any] | None:
        """One stored sample by its id (None when retention has dropped it, or it never was)."""
        row = await self.pool.fetchrow("SELECT id, sample FROM shadow_mismatches WHERE id = $1", sample_id)
        return None if row is None else {"id": row["id"], **json.loads(row["sample"])}
