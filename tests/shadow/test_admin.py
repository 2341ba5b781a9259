"""The admin views (`GET /shadow/mismatches`, `GET /shadow/report`) over a real `GatewayStore`
on the project's Postgres (the session's `pg_dsn`), with samples built from real
`comparator.compare` verdicts; and the store's retention by count and by age.

`app[GATEWAY]` is `FakeGateway` here, a dataclass holding the real store and a fixed snapshot:
the real `Gateway` class is written separately, and the views only rely on its `store`
attribute and `snapshot()` method. The database is shared by the whole session, so every test
starts and ends with an empty `shadow_mismatches`, and stage decisions use a group name of
their own.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from aiohttp import web

from comparator import Request, Response, compare
from shadow_proxy.admin import add_admin_routes
from shadow_proxy.appkeys import GATEWAY
from shadow_proxy.config import GatewayConfig
from shadow_proxy.model import Decision, Sample
from shadow_proxy.redact import REDACTED, redact_sample
from shadow_proxy.store import GatewayStore

JSON = {"content-type": "application/json"}
ONE_ROUTE = "GET /sessions/{session_id}"
LIST_ROUTE = "GET /sessions"


@dataclass
class FakeGateway:
    """The part of the gateway the admin views use: `store` and `snapshot()`."""

    store: GatewayStore | None
    snapshot_data: dict[str, Any] = field(default_factory=lambda: {"groups": {}, "routes": {}})

    def snapshot(self) -> dict[str, Any]:
        return self.snapshot_data


def make_app(gateway: FakeGateway) -> web.Application:
    app = web.Application()
    app[GATEWAY] = gateway  # type: ignore[assignment]  # FakeGateway stands in for Gateway
    add_admin_routes(app)
    return app


def make_sample(
    target: str,
    primary: Any,
    shadow: Any,
    *,
    at: float | None = None,
    request_id: str = "",
    headers: dict[str, str] | None = None,
) -> Sample:
    """A mismatch sample of `GET <target>`, its verdict from the real comparator."""
    request = Request("GET", target, headers or {})
    left = Response(200, JSON, json.dumps(primary).encode(), "legacy")
    right = Response(200, JSON, json.dumps(shadow).encode(), "native")
    comparison = compare(left, right, GatewayConfig().load_rules(), request=request)  # labelled as the gateway does
    assert comparison.result == "mismatch" and comparison.route
    return Sample(
        request_id or uuid.uuid4().hex,
        time.time() if at is None else at,
        comparison.route,
        "reads",
        "shadow",
        "mirror",
        request,
        left,
        right,
        comparison,
    )


@asynccontextmanager
async def open_store(dsn: str, max_samples: int = 1000, max_age_s: float = 86_400.0) -> AsyncIterator[GatewayStore]:
    """A store with its schema on its own pool, `shadow_mismatches` emptied before and after."""
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
    try:
        store = GatewayStore(pool, max_samples, max_age_s)
        await store.ensure_schema()
        await pool.execute("DELETE FROM shadow_mismatches")
        try:
            yield store
        finally:
            await pool.execute("DELETE FROM shadow_mismatches")
    finally:
        await pool.close()


@pytest.fixture
async def store(pg_dsn: str) -> AsyncIterator[GatewayStore]:
    async with open_store(pg_dsn) as opened:
        yield opened


@pytest.fixture
async def group(store: GatewayStore) -> AsyncIterator[str]:
    """A route group name of this test's own, its stage rows deleted afterwards."""
    name = f"reads-{uuid.uuid4().hex[:8]}"
    yield name
    await store.pool.execute("DELETE FROM shadow_rollout_events WHERE route_group = $1", name)
    await store.pool.execute("DELETE FROM shadow_rollout WHERE route_group = $1", name)


async def seed(store: GatewayStore) -> list[Sample]:
    """Three mismatches, oldest first: two on one session, one on the list."""
    now = time.time()
    samples = [
        make_sample("/sessions/s1", {"session_name": "a"}, {"session_name": "b"}, at=now - 30, request_id="r1"),
        make_sample(
            "/sessions?limit=2",
            {"data": [{"session_name": "a"}]},
            {"data": [{"session_name": "c"}]},
            at=now - 20,
            request_id="r2",
        ),
        make_sample(
            "/sessions/s2", {"session_state": {"k": 1}}, {"session_state": {"k": 2}}, at=now - 10, request_id="r3"
        ),
    ]
    for sample in samples:
        await store.record(sample)
    return samples


# ---- /shadow/mismatches ------------------------------------------------------------------------


async def test_mismatches_newest_first_with_the_stored_sample(aiohttp_client, store):
    await seed(store)
    client = await aiohttp_client(make_app(FakeGateway(store)))
    resp = await client.get("/shadow/mismatches")
    assert resp.status == 200
    data = await resp.json()
    assert data["count"] == 3
    assert [m["request_id"] for m in data["mismatches"]] == ["r3", "r2", "r1"]
    first = data["mismatches"][2]
    assert isinstance(first["id"], int)
    assert (first["route"], first["result"], first["request"]["target"]) == (ONE_ROUTE, "mismatch", "/sessions/s1")
    assert first["comparison"]["differences"] == [
        {"path": "session_name", "template": "session_name", "kind": "value", "primary": "a", "shadow": "b"}
    ]


async def test_mismatches_filter_by_route_and_path(aiohttp_client, store):
    await seed(store)
    client = await aiohttp_client(make_app(FakeGateway(store)))
    by_route = await (await client.get("/shadow/mismatches", params={"route": ONE_ROUTE})).json()
    assert [m["request_id"] for m in by_route["mismatches"]] == ["r3", "r1"]
    by_path = await (await client.get("/shadow/mismatches", params={"path": "data[*].session_name"})).json()
    assert [m["request_id"] for m in by_path["mismatches"]] == ["r2"]
    both = await (await client.get("/shadow/mismatches", params={"route": LIST_ROUTE, "path": "session_name"})).json()
    assert both == {"mismatches": [], "count": 0}


async def test_mismatches_filter_by_time_epoch_and_iso(aiohttp_client, store):
    samples = await seed(store)
    client = await aiohttp_client(make_app(FakeGateway(store)))
    since = str(samples[1].at - 1)
    data = await (await client.get("/shadow/mismatches", params={"since": since})).json()
    assert [m["request_id"] for m in data["mismatches"]] == ["r3", "r2"]
    until_iso = datetime.fromtimestamp(samples[1].at + 1, UTC).isoformat().replace("+00:00", "Z")
    data = await (await client.get("/shadow/mismatches", params={"since": since, "until": until_iso})).json()
    assert [m["request_id"] for m in data["mismatches"]] == ["r2"]


async def test_mismatches_limit(aiohttp_client, store):
    await seed(store)
    client = await aiohttp_client(make_app(FakeGateway(store)))
    data = await (await client.get("/shadow/mismatches", params={"limit": "2"})).json()
    assert [m["request_id"] for m in data["mismatches"]] == ["r3", "r2"] and data["count"] == 2


@pytest.mark.parametrize(
    "params, word",
    [
        ({"since": "yesterday"}, "since"),
        ({"until": "2024-13-45"}, "until"),
        ({"since": "nan"}, "since"),
        ({"since": "200", "until": "100"}, "since"),
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "ten"}, "limit"),
    ],
)
async def test_mismatches_bad_query_is_400(aiohttp_client, store, params, word):
    client = await aiohttp_client(make_app(FakeGateway(store)))
    resp = await client.get("/shadow/mismatches", params=params)
    assert resp.status == 400
    assert word in (await resp.json())["detail"]


async def test_mismatches_without_a_store_is_503(aiohttp_client):
    client = await aiohttp_client(make_app(FakeGateway(None)))
    resp = await client.get("/shadow/mismatches")
    assert resp.status == 503
    assert await resp.json() == {"detail": "no mismatch store configured"}


async def test_redacted_sample_is_what_the_api_shows(aiohttp_client, store):
    """The store keeps what redaction left: secrets never come back out of the API."""
    sample = make_sample(
        "/sessions/s1",
        {"session_state": {"token": "t1"}, "n": 1},
        {"session_state": {"token": "t2"}, "n": 2},
        headers={"Authorization": "Bearer abc"},
    )
    await store.record(redact_sample(sample, [], ["**.session_state"]))
    client = await aiohttp_client(make_app(FakeGateway(store)))
    text = await (await client.get("/shadow/mismatches")).text()
    assert "t1" not in text and "t2" not in text and "Bearer" not in text
    [stored] = json.loads(text)["mismatches"]
    assert stored["request"]["headers"] == {"Authorization": REDACTED}
    assert json.loads(stored["primary"]["body"]) == {"session_state": REDACTED, "n": 1}


# ---- /shadow/report ----------------------------------------------------------------------------


async def test_report_shows_snapshot_and_stored_data(aiohttp_client, store, group):
    await seed(store)
    await store.seed_stages({group: "legacy"})
    await store.set_stage(Decision(group, "legacy", "shadow", "mirroring starts", "admin"), expect="legacy")
    snapshot = {
        "groups": {
            group: {"stage": "shadow", "routes": [ONE_ROUTE], "decided_by": "admin", "reason": "mirroring starts"}
        },
        "routes": {ONE_ROUTE: {"match": 97, "mismatch": 3, "expected": 0, "error": 0, "parity": 0.97}},
    }
    client = await aiohttp_client(make_app(FakeGateway(store, snapshot)))
    resp = await client.get("/shadow/report")
    assert resp.status == 200 and resp.content_type == "text/html"
    text = await resp.text()
    stored = await store.mismatches()
    for sample in stored:
        assert f'id="sample-{sample["id"]}"' in text
    assert 'data-path="data[0].session_name"' in text and "data[*].session_name" in text
    assert group in text and "legacy → shadow by admin" in text and "97.00%" in text


async def test_report_without_a_store_renders_with_a_note(aiohttp_client):
    snapshot = {"groups": {"reads": {"stage": "legacy", "routes": [ONE_ROUTE]}}, "routes": {}}
    client = await aiohttp_client(make_app(FakeGateway(None, snapshot)))
    resp = await client.get("/shadow/report")
    assert resp.status == 200
    text = await resp.text()
    assert "No mismatch store is configured" in text and "no mismatches stored" in text and "reads" in text


# ---- retention ---------------------------------------------------------------------------------


async def test_retention_keeps_the_newest_max_samples(store):
    small = GatewayStore(store.pool, max_samples=3, max_age_s=86_400.0)
    for n in range(5):
        await small.record(make_sample(f"/sessions/s{n}", {"n": n}, {"n": -n - 1}, request_id=f"r{n}"))
    assert [m["request_id"] for m in await store.mismatches()] == ["r4", "r3", "r2"]


async def test_retention_drops_samples_older_than_max_age(store):
    now = time.time()
    await store.record(make_sample("/sessions/old", {"n": 1}, {"n": 2}, at=now - 3600, request_id="old"))
    await store.record(make_sample("/sessions/recent", {"n": 1}, {"n": 2}, at=now - 30, request_id="recent"))
    assert [m["request_id"] for m in await store.mismatches()] == ["recent", "old"]
    short = GatewayStore(store.pool, max_samples=1000, max_age_s=600.0)
    await short.record(make_sample("/sessions/new", {"n": 1}, {"n": 2}, at=now, request_id="new"))
    assert [m["request_id"] for m in await store.mismatches()] == ["new", "recent"]
