"""The gate's shared evidence in the real store: replicas' increments add up (concurrently too),
a bucket is selected by group, stage and time, and old buckets are dropped."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from shadow_proxy.gate import combine
from shadow_proxy.store import GatewayStore
from tests.shadow.test_admin import open_store

BUCKET_S = 10.0


@pytest.fixture
async def store(pg_dsn: str) -> AsyncIterator[GatewayStore]:
    async with open_store(pg_dsn) as opened:
        await opened.pool.execute("DELETE FROM shadow_gate_counts")
        yield opened
        await opened.pool.execute("DELETE FROM shadow_gate_counts")


def bucket(at: float) -> float:
    return (at // BUCKET_S) * BUCKET_S


async def test_replicas_increments_add_up_even_when_flushed_at_once(store: GatewayStore) -> None:
    now = bucket(time.time())
    one = {("reads", "shadow", now): [3, 1, 4, 0], ("reads", "shadow", now - BUCKET_S): [2, 0, 2, 1]}
    # Three replicas flushing the same two buckets at the same moment, five times each.
    await asyncio.gather(*(store.add_counts(dict(one), keep_s=3600) for _ in range(15)))
    rows = await store.buckets("reads", "shadow", since=now - 60, bucket_s=BUCKET_S)
    assert [(b.start, b.agreed, b.mismatches, b.native_calls, b.native_errors) for b in rows] == [
        (now, 45, 15, 60, 0),
        (now - BUCKET_S, 30, 0, 30, 15),
    ]
    combined = combine(rows, 10_000)
    assert (combined.comparisons.total, combined.comparisons.failures) == (90, 15)


async def test_buckets_are_chosen_by_group_stage_and_time(store: GatewayStore) -> None:
    now = bucket(time.time())
    await store.add_counts(
        {
            ("reads", "shadow", now): [1, 0, 0, 0],
            ("reads", "primary", now): [10, 0, 0, 0],  # another stage's evidence
            ("writes", "shadow", now): [100, 0, 0, 0],  # another group's
            ("reads", "shadow", now - 5 * BUCKET_S): [1000, 0, 0, 0],  # before the stage was decided
        },
        keep_s=3600,
    )
    # The stage decided 2 s into the current bucket: that bucket counts (it ends after), the old one not.
    rows = await store.buckets("reads", "shadow", since=now + 2, bucket_s=BUCKET_S)
    assert [(b.start, b.agreed) for b in rows] == [(now, 1)]
    assert len(await store.buckets("reads", "shadow", since=now - 60, bucket_s=BUCKET_S)) == 2


async def test_old_buckets_are_dropped(store: GatewayStore) -> None:
    now = bucket(time.time())
    await store.add_counts({("reads", "shadow", now - 100 * BUCKET_S): [5, 0, 0, 0]}, keep_s=3600)
    await store.add_counts({("reads", "shadow", now): [1, 0, 0, 0]}, keep_s=50 * BUCKET_S)
    rows = await store.buckets("reads", "shadow", since=0.0, bucket_s=BUCKET_S)
    assert [(b.start, b.agreed) for b in rows] == [(now, 1)]
