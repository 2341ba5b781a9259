"""What the report charts, in the real store: per-route comparison counts by cohort and latency
histograms per side, added up across replicas (concurrent flushes too), read back per bucket,
per cohort and per side, and dropped past their age; and one sample read back by its id."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from shadow_proxy.routestats import BUCKET_S, RouteStats, latency_view
from shadow_proxy.store import GatewayStore
from tests.shadow.test_admin import make_sample, open_store

ROUTE = "GET /sessions/{session_id}"
TABLES = ("shadow_route_counts", "shadow_latency_counts")


@pytest.fixture
async def store(pg_dsn: str) -> AsyncIterator[GatewayStore]:
    async with open_store(pg_dsn) as opened:
        for table in TABLES:
            await opened.pool.execute(f"DELETE FROM {table}")
        yield opened
        for table in TABLES:
            await opened.pool.execute(f"DELETE FROM {table}")


def replica_share(now: float) -> RouteStats:
    """One replica's counts: two buckets of one route, a cohort each, both sides' latency."""
    stats = RouteStats(BUCKET_S)
    team = {"type": "team", "user": "3", "size": "1"}
    agent = {"type": "agent", "user": "none", "size": "2"}
    stats.add_comparison(ROUTE, "match", team, at=now)
    stats.add_comparison(ROUTE, "mismatch", team, at=now)
    stats.add_comparison(ROUTE, "match", agent, at=now - BUCKET_S)
    stats.add_latency(ROUTE, "legacy", 0.004, at=now)
    stats.add_latency(ROUTE, "native", 0.0011, at=now)
    return stats


async def test_replicas_counts_add_up_and_read_back_by_bucket_cohort_and_side(store: GatewayStore) -> None:
    now = time.time()
    start = (now // BUCKET_S) * BUCKET_S
    # Three replicas flushing at the same moment, twice each.
    await asyncio.gather(*(store.add_route_stats(replica_share(now), keep_s=3600) for _ in range(6)))
    timeline = await store.route_timeline(now - 3600)
    assert [(r["bucket"], r["result"], r["n"]) for r in timeline] == [
        (start - BUCKET_S, "match", 6),
        (start, "match", 6),
        (start, "mismatch", 6),
    ]
    by_type = await store.cohort_counts("type", now - 3600)
    assert [(r["value"], r["result"], r["n"]) for r in by_type] == [
        ("agent", "match", 6),
        ("team", "match", 6),
        ("team", "mismatch", 6),
    ]
    by_user = {(r["value"], r["result"]): r["n"] for r in await store.cohort_counts("user", now - 3600)}
    assert by_user == {("3", "match"): 6, ("3", "mismatch"): 6, ("none", "match"): 6}
    latency = latency_view(await store.latency_counts(now - 3600))
    assert latency[ROUTE]["legacy"]["count"] == 6 and latency[ROUTE]["native"]["count"] == 6
    assert 0.0025 <= latency[ROUTE]["legacy"]["p50"] <= 0.005  # in the bucket the 4 ms calls fell in
    assert 0.001 <= latency[ROUTE]["native"]["p50"] <= 0.0025


async def test_old_buckets_are_dropped_by_the_next_flush(store: GatewayStore) -> None:
    now = time.time()
    await store.add_route_stats(replica_share(now - 7200), keep_s=86_400)
    assert await store.route_timeline(now - 86_400)
    await store.add_route_stats(replica_share(now), keep_s=3600)  # the older share is past 1 h now
    rows = await store.route_timeline(now - 86_400)
    assert rows and all(r["bucket"] >= now - 3600 - BUCKET_S for r in rows)
    latency = await store.latency_counts(now - 86_400)
    assert sum(r["n"] for r in latency) == 2  # this flush's two calls only
    for table in TABLES:
        oldest = await store.pool.fetchval(f"SELECT min(bucket) FROM {table}")
        assert oldest.timestamp() >= now - 3600 - BUCKET_S


def test_a_failed_flush_keeps_the_counts_for_the_next() -> None:
    stats = replica_share(time.time())
    taken = stats.take()
    assert not stats
    stats.restore(taken)
    stats.restore(replica_share(time.time()))
    assert sum(stats.results.values()) == 2 * sum(replica_share(time.time()).results.values())


async def test_one_sample_by_its_id(store: GatewayStore) -> None:
    await store.record(make_sample("/sessions/s9", {"session_name": "a"}, {"session_name": "b"}, request_id="by-id"))
    [stored] = await store.mismatches()
    again = await store.mismatch(stored["id"])
    assert again == stored and again["request_id"] == "by-id"
    assert await store.mismatch(stored["id"] + 1000) is None


async def test_the_rollouts_flush_writes_them_and_keeps_them_when_the_store_fails(store: GatewayStore, pg_dsn: str):
    """The same periodic flush as the gate's counts: on a store that fails, this replica's
    counts are kept (and the error counted) and written by the next flush that succeeds."""
    import asyncpg

    from shadow_proxy.config import GatewayConfig
    from shadow_proxy.metrics import GatewayMetrics
    from shadow_proxy.rollout import Rollout

    closed = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=1)
    await closed.close()
    metrics = GatewayMetrics()
    failing = Rollout(GatewayConfig(), has_legacy=True, store=GatewayStore(closed, 10, 60.0), metrics=metrics)
    assert failing.stats is not None
    failing.stats.restore(replica_share(time.time()))
    with pytest.raises(asyncpg.InterfaceError):
        await failing.flush()
    assert (
        sum(failing.stats.results.values()) == 12
        and metrics.registry.get_sample_value("shadow_store_errors_total") == 1
    )
    working = Rollout(GatewayConfig(), has_legacy=True, store=store, metrics=metrics)
    assert working.stats is not None
    working.stats.restore(failing.stats.take())
    await working.flush()
    assert not working.stats
    assert sum(r["n"] for r in await store.route_timeline(0)) == 3
