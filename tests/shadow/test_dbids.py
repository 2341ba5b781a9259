"""Database ids learned from the legacy AgentOS (shadow_proxy/dbids.py), the alias mapping in the
native settings (session_service/config.py), and "cannot serve" answers as data
(agentos_session/sessions_api.py), first as pure functions, then against the real AgentOS
(`PostgresDb(id="main-db")`) and the real native service."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from agentos_session.sessions_api import SESSION_CANNOT_SERVE, cannot_serve
from comparator import Request
from harness.agentos_app import AGENT_ID, MAIN_DB_ID
from harness.seed import S_AGENT_1
from harness.services import reset_gateway_tables
from session_service.appkeys import DATABASES
from session_service.config import ConfigError, Database, Settings, load_settings, with_db_aliases
from shadow_proxy.app import create_app
from shadow_proxy.appkeys import GATEWAY
from shadow_proxy.config import Gate, GatewayConfig, Legacy, load_config
from shadow_proxy.dbids import map_ids, parse_config
from tests.shadow.faults import FaultyLegacy

# ---------------------------------------------------------------------------------------------
# pure: parsing agno's /config, mapping ids, aliases, the cannot-serve table
# ---------------------------------------------------------------------------------------------


def test_parse_config_reads_session_dbs_first_then_databases() -> None:
    body = {"session": {"dbs": [{"db_id": "a", "tables": ["agno_sessions"]}, {"db_id": "b"}]}, "databases": ["z"]}
    assert parse_config(json.dumps(body).encode()) == ("a", "b")
    assert parse_config(json.dumps({"databases": ["x", "x", "y"]}).encode()) == ("x", "y")
    for bad in (b"not json", b"[1]", b'{"os_id": "o"}'):
        with pytest.raises(ValueError):
            parse_config(bad)


def _single(db_id: str = "configured") -> Settings:
    return Settings(databases=(Database(db_id, "postgresql://x/db"),), default_db_id=db_id, route_default_db_id=db_id)


def test_single_dsn_gets_legacys_one_id_as_an_alias() -> None:
    reading, settings = map_ids(("main-db",), _single())
    assert reading.mapped == {"main-db": "configured"} and reading.unmapped == {}
    assert settings.db_aliases == {"main-db": "configured"}
    assert settings.database_for("main-db") == settings.databases[0]
    assert settings.database_for("other") is None


def test_an_id_native_serves_maps_to_itself_and_no_alias_is_made() -> None:
    reading, settings = map_ids(("main-db",), _single("main-db"))
    assert reading.mapped == {"main-db": "main-db"} and settings.db_aliases == {}


def test_ids_native_cannot_serve_are_unmapped_with_the_fix() -> None:
    # One DSN, two legacy ids: guessing which is the DSN's would be a guess; neither is aliased.
    reading, settings = map_ids(("main-db", "second-db"), _single())
    assert reading.mapped == {} and set(reading.unmapped) == {"main-db", "second-db"}
    assert all("AGNO_SESSION_DSN_MAP" in why for why in reading.unmapped.values())
    assert settings.db_aliases == {}
    # One of them native's own: the other is unmapped.
    reading, _ = map_ids(("main-db", "second-db"), _single("main-db"))
    assert reading.mapped == {"main-db": "main-db"} and list(reading.unmapped) == ["second-db"]
    # A DSN map serves its keys; an id outside it is unmapped.
    multi = load_settings(
        {"AGNO_SESSION_DSN_MAP": json.dumps({"main-db": "postgresql://x/a", "b": "postgresql://x/b"})}
    )
    reading, _ = map_ids(("main-db", "c"), multi)
    assert reading.mapped == {"main-db": "main-db"} and list(reading.unmapped) == ["c"]


def test_with_db_aliases_never_routes_nowhere() -> None:
    settings = _single()
    assert with_db_aliases(settings, {"configured": "configured"}).db_aliases == {}
    with pytest.raises(ConfigError, match="not a configured database"):
        with_db_aliases(settings, {"main-db": "nope"})
    aliased = with_db_aliases(settings, {"main-db": "configured"})
    assert with_db_aliases(aliased, {"main-db": "configured"}).db_aliases == {"main-db": "configured"}
    two = dataclasses.replace(settings, databases=(*settings.databases, Database("other", "postgresql://x/o")))
    aliased_two = with_db_aliases(two, {"main-db": "configured"})
    with pytest.raises(ConfigError, match="already names"):
        with_db_aliases(aliased_two, {"main-db": "other"})


@pytest.mark.parametrize(
    ("status", "detail", "expected"),
    [
        (404, "No database found with id 'main-db'", 404),
        (404, "No database with id 'main-db' has table 'x'", 404),
        (400, "The db_id query parameter is required when using multiple databases", 400),
        (503, "Database unavailable (ConnectionRefusedError)", 503),
        (404, "Session not found", None),
        (404, "Run not found", None),
        (400, "The db_id query parameter is required when passing a table", None),
        (200, "No database found with id 'main-db'", None),
    ],
)
def test_cannot_serve_table(status: int, detail: str, expected: int | None) -> None:
    found = cannot_serve(status, json.dumps({"detail": detail}).encode())
    assert (found.status if found else None) == expected


def test_cannot_serve_ignores_bodies_that_are_not_agnos_errors() -> None:
    assert cannot_serve(404, b"<html>No database found with id 'x'</html>") is None
    assert cannot_serve(404, b"[\"No database found with id 'x'\"]") is None
    assert [a.nothing_done for a in SESSION_CANNOT_SERVE if a.status == 503] == [False]


# ---------------------------------------------------------------------------------------------
# real sides
# ---------------------------------------------------------------------------------------------


async def _get(url: str, path: str) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as session, session.get(url + path) as r:
        return r.status, await r.read()


async def test_the_real_agentos_config_lists_its_db_id(legacy_url: str, legacy_multi_url: str) -> None:
    status, body = await _get(legacy_url, "/config")
    assert status == 200 and parse_config(body) == (MAIN_DB_ID,)
    status, body = await _get(legacy_multi_url, "/config")
    assert status == 200 and set(parse_config(body)) == {MAIN_DB_ID, "second-db"}


async def test_the_cannot_serve_table_against_both_real_sides(legacy_url: str, native_url: str) -> None:
    """Both sides say an unknown db id in agno's words (the table's pattern matches both), and a
    missing session is a genuine 404 on both (the table matches neither)."""
    for url in (legacy_url, native_url):
        status, body = await _get(url, "/sessions?type=agent&db_id=no-such-db")
        assert cannot_serve(status, body) is not None, (url, status, body)
        status, body = await _get(url, f"/sessions/no-such-session?type=agent&db_id={MAIN_DB_ID}")
        assert status == 404 and cannot_serve(status, body) is None, (url, status, body)
        status, body = await _get(url, f"/sessions/{S_AGENT_1}?type=agent&db_id={MAIN_DB_ID}&table=no_such_table")
        assert cannot_serve(status, body) is not None, (url, status, body)


GatewayOf = Callable[..., Awaitable[TestClient]]


@pytest.fixture
async def bare_gateway(pg_dsn: str, seeded: None) -> AsyncIterator[GatewayOf]:
    """A gateway configured with nothing but AGNO_LEGACY_URL, the stage and one DSN (no
    AGNO_DEFAULT_DB_ID: native's id for the DSN is agno's uuid default, not `main-db`)."""
    clients: list[TestClient] = []

    async def make(legacy: str, stage: str, legacy_timeout_s: float = 10.0, interval_s: float = 60.0) -> TestClient:
        await reset_gateway_tables(pg_dsn)
        config = load_config(None, env={"AGNO_LEGACY_URL": legacy, "AGNO_GATEWAY_STAGE": stage})
        config = dataclasses.replace(
            config, gate=Gate(enabled=False), legacy=Legacy(url=legacy, timeout_s=legacy_timeout_s)
        )
        assert isinstance(config, GatewayConfig)
        settings = load_settings({"AGNO_PG_DSN": pg_dsn})
        assert settings.default_db_id != MAIN_DB_ID
        client = TestClient(TestServer(create_app(config, native_settings=settings, db_ids_interval_s=interval_s)))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


def _metric(text: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include `labels` (0 when none)."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        if head.split("{")[0] != name:
            continue
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total


async def test_learned_id_is_answered_natively_and_byte_identically_at_primary(
    bare_gateway: GatewayOf, legacy_url: str
) -> None:
    gw = await bare_gateway(legacy_url, "primary")
    paths = [
        f"/sessions?type=agent&component_id={AGENT_ID}&db_id={MAIN_DB_ID}",
        f"/sessions/{S_AGENT_1}?type=agent&db_id={MAIN_DB_ID}",
        f"/sessions/{S_AGENT_1}/runs?type=agent&db_id={MAIN_DB_ID}",
        f"/sessions/no-such-session?type=agent&db_id={MAIN_DB_ID}",  # a genuine 404 stays native's
    ]
    for path in paths:
        r = await gw.get(path)
        assert (r.status, await r.read()) == await _get(legacy_url, path), path
    metrics = await (await gw.get("/metrics")).text()
    assert _metric(metrics, "shadow_fallbacks_total") == 0
    assert _metric(metrics, "shadow_requests_total", stage="primary", side="native") >= len(paths)
    assert _metric(metrics, "shadow_unmapped_db_ids") == 0
    ready = await gw.get("/readyz")
    body = await ready.json()
    assert ready.status == 200 and body["db_ids"]["legacy"] == [MAIN_DB_ID] and body["db_ids"]["unmapped"] == {}
    assert list(body["db_ids"]["mapped"]) == [MAIN_DB_ID]


async def test_unmapped_ids_fall_back_as_cannot_serve_and_are_reported(
    bare_gateway: GatewayOf, legacy_multi_url: str
) -> None:
    """Legacy serves two databases, native was given one DSN: neither id is guessed; their
    requests are legacy's answers (fallback reason `cannot_serve`), the gateway stays ready and
    says which ids and what to set."""
    gw = await bare_gateway(legacy_multi_url, "primary")
    for path in (
        f"/sessions?type=agent&db_id={MAIN_DB_ID}",
        "/sessions/s-second-1?type=agent&db_id=second-db",
    ):
        r = await gw.get(path)
        assert (r.status, await r.read()) == await _get(legacy_multi_url, path), path
        assert r.status == 200
    metrics = await (await gw.get("/metrics")).text()
    assert _metric(metrics, "shadow_fallbacks_total", reason="cannot_serve") == 2
    assert _metric(metrics, "shadow_unmapped_db_ids") == 2
    ready = await gw.get("/readyz")
    body = await ready.json()
    assert ready.status == 200, body
    assert set(body["db_ids"]["unmapped"]) == {MAIN_DB_ID, "second-db"}
    assert all("AGNO_SESSION_DSN_MAP" in why for why in body["db_ids"]["unmapped"].values())


async def test_at_shadow_the_learned_id_makes_native_agree(bare_gateway: GatewayOf, legacy_url: str) -> None:
    """At `shadow` legacy answers; the mirrored copy to native carries `db_id=main-db` too and
    must be a match, not native's `No database found`."""
    gw = await bare_gateway(legacy_url, "shadow")
    path = f"/sessions?type=agent&component_id={AGENT_ID}&db_id={MAIN_DB_ID}"
    r = await gw.get(path)
    assert (r.status, await r.read()) == await _get(legacy_url, path)
    for _ in range(100):  # the copy is compared in the background; bounded wait
        metrics = await (await gw.get("/metrics")).text()
        if _metric(metrics, "shadow_comparisons_total") >= 1:
            break
        await asyncio.sleep(0.05)
    assert _metric(metrics, "shadow_comparisons_total", result="match") == 1, metrics


async def test_an_agentos_away_at_start_is_learned_from_later(bare_gateway: GatewayOf, legacy_url: str) -> None:
    """Legacy stalls while the gateway starts: nothing is learned (the reason is in /readyz),
    `db_id=main-db` is a cannot-serve answer and goes to legacy; once legacy answers again the
    next reading (every RETRY_S while the last failed) maps the id and native answers."""
    path = f"/sessions?type=agent&component_id={AGENT_ID}&db_id={MAIN_DB_ID}"
    async with FaultyLegacy(legacy_url) as faulty:
        faulty.mode, faulty.fault_probes = "hold", True  # /config (the gateway's own read) stalls too
        gw = await bare_gateway(faulty.url, "primary", legacy_timeout_s=0.5, interval_s=0.2)
        body = await (await gw.get("/readyz")).json()
        assert body["db_ids"]["mapped"] == {} and "GET /config did not answer (timeout)" in body["db_ids"]["error"]
        assert (await gw.get(path)).status == 504  # cannot serve -> legacy, which is stalled
        faulty.mode = "pass"
        faulty.release.set()
        for _ in range(200):  # bounded: at most 10 s (the retry comes every RETRY_S = 5 s)
            body = await (await gw.get("/readyz")).json()
            if body["db_ids"]["mapped"]:
                break
            await asyncio.sleep(0.05)
        assert list(body["db_ids"]["mapped"]) == [MAIN_DB_ID] and "error" not in body["db_ids"], body
        faulty.mode = "hold"
        faulty.release.clear()
        r = await gw.get(path)  # native's answer now, with legacy stalled again
        assert (r.status, await r.read()) == await _get(legacy_url, path)
        metrics = await (await gw.get("/metrics")).text()
        assert _metric(metrics, "shadow_fallbacks_total", reason="cannot_serve") == 1
        faulty.release.set()


async def test_native_database_away_falls_back_as_cannot_serve(bare_gateway: GatewayOf, legacy_url: str) -> None:
    """Native's database away (a pool to a closed port under the learned id): native answers
    `503 Database unavailable (...)`, a cannot-serve answer, so at `primary` a read is legacy's
    answer, counted under `cannot_serve`; once the database is back native answers again."""
    gw = await bare_gateway(legacy_url, "primary")
    handle = gw.app[GATEWAY].native.app[DATABASES][MAIN_DB_ID]  # type: ignore[union-attr]  # in-process native
    dead = await asyncpg.create_pool("postgresql://postgres@127.0.0.1:1/x", min_size=0, max_size=1)
    path = f"/sessions/{S_AGENT_1}?type=agent&db_id={MAIN_DB_ID}"
    original, handle.pool = handle.pool, dead
    try:
        native = gw.app[GATEWAY].native
        direct = await native.send(Request("GET", path, {}, b""), 5.0)
        assert direct.response.status == 503 and cannot_serve(direct.response.status, direct.response.body)
        r = await gw.get(path)
        assert (r.status, await r.read()) == await _get(legacy_url, path)
    finally:
        handle.pool = original
        await dead.close()
    metrics = await (await gw.get("/metrics")).text()
    assert _metric(metrics, "shadow_fallbacks_total", reason="cannot_serve") == 1
    r = await gw.get(path)
    assert (r.status, await r.read()) == await _get(legacy_url, path)
    metrics = await (await gw.get("/metrics")).text()
    assert _metric(metrics, "shadow_fallbacks_total", reason="cannot_serve") == 1  # native's answer now


async def test_a_refusal_legacy_repeats_is_no_native_error_for_the_gate(
    bare_gateway: GatewayOf, legacy_multi_url: str
) -> None:
    """A db_id neither side knows is refused by native ("cannot serve") and then by legacy with
    the same bytes: native answered right, and the gate must not count it as a native error
    (random client ids would roll a route back: the schemathesis run did). An id legacy serves
    and native cannot is a native error."""
    gw = await bare_gateway(legacy_multi_url, "primary")
    windows = gw.server.app[GATEWAY].rollout.windows["reads"]
    unknown = "/sessions?type=agent&db_id=no-such-db"
    r = await gw.get(unknown)
    assert (r.status, await r.read()) == await _get(legacy_multi_url, unknown)
    assert r.status == 404
    assert (windows.native_calls.total, windows.native_calls.failures) == (1, 0)
    r = await gw.get(f"/sessions?type=agent&db_id={MAIN_DB_ID}")  # legacy serves it, native cannot
    assert r.status == 200
    assert (windows.native_calls.total, windows.native_calls.failures) == (2, 1)
