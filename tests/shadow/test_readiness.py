"""The gateway's `/readyz` and `shadow_ready{dependency}`: the real in-process native service,
the real agno AgentOS (or a dead port where legacy is away), the real store database (or a pool
on a closed port where it is away), and the native service over HTTP as its own process."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from session_service.appkeys import DATABASES
from session_service.config import load_settings
from shadow_proxy.app import create_app
from shadow_proxy.appkeys import GATEWAY
from shadow_proxy.config import Native
from tests.legacy.fixtures import free_port
from tests.shadow.conftest import gateway_config, reset_gateway_tables

CLOSED_PORT_DSN = "postgresql://postgres@127.0.0.1:1/x"
Factory = Callable[..., Awaitable[TestClient]]


@pytest.fixture
async def start_gateway(pg_dsn: str, seeded: None) -> AsyncIterator[Factory]:
    """`await start_gateway(legacy_url, stages={"reads": ..., "writes": ...}, native=Native(...))`:
    a started gateway on fresh gateway tables (a stored stage would win over the configured one),
    its readiness refreshed every 0.2 s in the background."""
    clients: list[TestClient] = []

    async def make(legacy_url: str, stages: dict[str, Any], **sections: Any) -> TestClient:
        await reset_gateway_tables(pg_dsn)
        config = gateway_config(legacy_url, **sections)
        config = dataclasses.replace(
            config,
            groups=tuple(dataclasses.replace(g, stage=stages[g.name]) for g in config.groups),
            store=dataclasses.replace(config.store, dsn=pg_dsn),
        )
        settings = load_settings({"AGNO_PG_DSN": pg_dsn, "AGNO_DEFAULT_DB_ID": "main-db"})
        client = TestClient(TestServer(create_app(config, native_settings=settings, readiness_interval_s=0.2)))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


def dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}"  # nothing listens there


async def ready_gauges(client: TestClient) -> dict[str, float]:
    text = await (await client.get("/metrics")).text()
    return {
        s.labels["dependency"]: s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "shadow_ready"
    }


async def readyz(client: TestClient) -> tuple[int, dict[str, Any]]:
    resp = await client.get("/readyz")
    assert resp.headers["Content-Type"].startswith("application/json")
    return resp.status, await resp.json()


async def test_ready_when_every_dependency_answers(start_gateway: Factory, legacy_url: str) -> None:
    client = await start_gateway(legacy_url, {"reads": "shadow", "writes": "shadow"})
    status, body = await readyz(client)
    assert (status, body) == (
        200,
        {
            "status": "ready",
            "checks": {"store": "ok", "native": "ok", "legacy": "ok"},
            "legacy_required": True,
            # what the gateway learned from the AgentOS's GET /config (shadow_proxy/dbids.py)
            "db_ids": {"legacy": ["main-db"], "mapped": {"main-db": "main-db"}, "unmapped": {}},
        },
    )
    assert await ready_gauges(client) == {"store": 1.0, "native": 1.0, "legacy": 1.0}
    text = await (await client.get("/metrics")).text()
    assert 'agno_session_db_up{db_id="main-db"} 1.0' in text  # the in-process native service's own gauge


@pytest.mark.parametrize(
    ("stages", "ready"),
    [
        ({"reads": "shadow", "writes": "shadow"}, False),
        ({"reads": "legacy", "writes": "legacy"}, False),
        ({"reads": "primary", "writes": "shadow"}, False),  # writes still answered by legacy
        ({"reads": "primary", "writes": "primary"}, True),
        ({"reads": "native", "writes": "primary"}, True),
    ],
)
async def test_legacy_away_matters_only_while_legacy_answers(
    start_gateway: Factory, stages: dict[str, str], ready: bool
) -> None:
    client = await start_gateway(dead_url(), stages)
    status, body = await readyz(client)
    assert body["checks"]["store"] == body["checks"]["native"] == "ok"
    assert body["checks"]["legacy"].startswith("/health did not answer (")  # reported at every stage
    assert body["legacy_required"] is not ready
    if ready:
        assert (status, body["status"]) == (200, "ready") and "not_ready" not in body
    else:
        assert (status, body["status"]) == (503, "not_ready")
        assert list(body["not_ready"]) == ["legacy"] and body["not_ready"]["legacy"] == body["checks"]["legacy"]
    assert await ready_gauges(client) == {"store": 1.0, "native": 1.0, "legacy": 0.0}
    assert (await client.get("/healthz")).status == 200  # liveness asks nobody


async def test_a_stage_change_changes_readiness(start_gateway: Factory) -> None:
    client = await start_gateway(dead_url(), {"reads": "shadow", "writes": "shadow"})
    assert (await readyz(client))[0] == 503
    gateway = client.app[GATEWAY]
    for group in ("reads", "writes"):
        await gateway.set_stage(group, "primary", "test: legacy away", "admin")
    assert (await readyz(client))[0] == 200


async def test_the_store_away_is_named(start_gateway: Factory, legacy_url: str) -> None:
    client = await start_gateway(legacy_url, {"reads": "primary", "writes": "primary"})
    store = client.app[GATEWAY].store
    assert store is not None
    dead = await asyncpg.create_pool(CLOSED_PORT_DSN, min_size=0, max_size=1)  # connects lazily
    original, store.pool = store.pool, dead
    try:
        status, body = await readyz(client)
        assert status == 503
        assert list(body["not_ready"]) == ["store"]
        assert body["not_ready"]["store"].startswith("database unreachable (")
        assert (await ready_gauges(client))["store"] == 0.0
    finally:
        store.pool = original
        await dead.close()
    assert (await readyz(client))[0] == 200


async def test_the_in_process_native_database_away_is_named(start_gateway: Factory, legacy_url: str) -> None:
    client = await start_gateway(legacy_url, {"reads": "shadow", "writes": "shadow"})
    handle = client.app[GATEWAY].native.app[DATABASES]["main-db"]  # type: ignore[union-attr]
    dead = await asyncpg.create_pool(CLOSED_PORT_DSN, min_size=0, max_size=1)
    original, handle.pool = handle.pool, dead
    try:
        # The background check, not a /readyz call, turns the gauge to 0.
        for _ in range(100):
            if (await ready_gauges(client)).get("native") == 0.0:
                break
            await asyncio.sleep(0.1)
        assert (await ready_gauges(client))["native"] == 0.0
        status, body = await readyz(client)
        assert status == 503 and list(body["not_ready"]) == ["native"]
        assert body["not_ready"]["native"].startswith("main-db: database unreachable (")
    finally:
        handle.pool = original
        await dead.close()
    assert (await readyz(client))[0] == 200


async def test_native_over_http_is_asked_for_its_readyz(
    start_gateway: Factory, legacy_url: str, native_url: str
) -> None:
    client = await start_gateway(legacy_url, {"reads": "primary", "writes": "primary"}, native=Native(url=native_url))
    assert await readyz(client) == (
        200,
        {
            "status": "ready",
            "checks": {"store": "ok", "native": "ok", "legacy": "ok"},
            "legacy_required": False,
            # native over HTTP is asked whether it serves each of legacy's ids (shadow_proxy/dbids.py)
            "db_ids": {"legacy": ["main-db"], "mapped": {"main-db": "main-db"}, "unmapped": {}},
        },
    )
    away = await start_gateway(legacy_url, {"reads": "primary", "writes": "primary"}, native=Native(url=dead_url()))
    status, body = await readyz(away)
    assert status == 503 and list(body["not_ready"]) == ["native"]
    assert body["not_ready"]["native"].startswith("/readyz did not answer (")
    assert list(body["db_ids"]["unmapped"]) == ["main-db"]  # an id native did not answer for
    assert await ready_gauges(away) == {"store": 1.0, "native": 0.0, "legacy": 1.0}


async def test_without_legacy_there_is_no_legacy_dependency(start_gateway: Factory) -> None:
    client = await start_gateway(None, {"reads": "native", "writes": "native"})  # type: ignore[arg-type]
    assert await readyz(client) == (
        200,
        {"status": "ready", "checks": {"store": "ok", "native": "ok"}, "legacy_required": False},
    )
    assert await ready_gauges(client) == {"store": 1.0, "native": 1.0}
