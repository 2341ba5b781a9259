"""Gateways for the tests: the real native service in-process, the real agno AgentOS over HTTP
(`legacy_url`), one embedded Postgres holding agno's tables and the gateway's own."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from harness.services import reset_gateway_tables
from session_service.config import load_settings
from shadow_proxy.app import create_app
from shadow_proxy.config import Gate, GatewayConfig, Legacy, Native, Rollout, Shadow, Store, load_config

GatewayFactory = Callable[..., Awaitable[TestClient]]


def gateway_config(legacy_url: str | None, **sections: Any) -> GatewayConfig:
    """The shipped config/gateway.yaml's groups, with test-sized timings (no gate unless asked)."""
    base = load_config(None, env={"AGNO_LEGACY_URL": legacy_url} if legacy_url else {})
    defaults = {
        "legacy": Legacy(url=legacy_url, timeout_s=10.0),
        "native": Native(),
        "shadow": Shadow(timeout_s=5.0),
        "gate": Gate(enabled=False),
        "rollout": Rollout(poll_s=0.2),
        "store": Store(),
        "rules": "config/comparator.yaml",
    }
    defaults.update(sections)
    return dataclasses.replace(base, **defaults)


@pytest.fixture
async def make_gateway(pg_dsn: str, seeded: None) -> AsyncIterator[GatewayFactory]:
    """`await make_gateway(config)` -> a test client of a started gateway (closed at the end)."""
    await reset_gateway_tables(pg_dsn)
    clients: list[TestClient] = []

    async def make(config: GatewayConfig, *, reset: bool = False, native_dsn: str | None = None) -> TestClient:
        if reset:
            await reset_gateway_tables(pg_dsn)
        config = dataclasses.replace(config, store=dataclasses.replace(config.store, dsn=config.store.dsn or pg_dsn))
        # The in-process native service, configured as the AgentOS it stands beside (db id main-db).
        settings = load_settings({"AGNO_PG_DSN": native_dsn or pg_dsn, "AGNO_DEFAULT_DB_ID": "main-db"})
        app = create_app(config, native_settings=settings)
        client = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()
