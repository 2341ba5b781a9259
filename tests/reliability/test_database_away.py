"""A database that is away is a 503 with Retry-After, never a 500: stopped (refused), stalled
(a proxy that stops forwarding), a connection dropped in the middle of a query, and the pools
closed under a request at shutdown. Real Postgres (its own embedded server), the real app."""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import signal
import time
from typing import Any

import asyncpg
import httpx
import pytest

from session_service.app import create_app
from session_service.appkeys import DATABASES
from session_service.config import load_settings
from session_service.errors import RETRY_AFTER_S, database_unavailable
from tests.reliability.conftest import ServiceProcess, StallingProxy, StoppablePg

# Every kind of route: list, read, create, rename, patch, delete, bulk delete.
REQUESTS: tuple[tuple[str, str, Any], ...] = (
    ("GET", "/sessions", None),
    ("GET", "/sessions/away-1", None),
    ("GET", "/sessions/away-1/runs", None),
    ("POST", "/sessions?type=agent", {"session_id": "away-2", "agent_id": "a"}),
    ("POST", "/sessions/away-1/rename", {"session_name": "n"}),
    ("PATCH", "/sessions/away-1", {"session_name": "m"}),
    ("DELETE", "/sessions/away-1", None),
    ("DELETE", "/sessions", {"session_ids": ["away-1"], "session_types": ["agent"]}),
)


def _settings(dsn: str, timeout_s: int = 60) -> Any:
    env = {
        "AGNO_PG_DSN": dsn,
        "AGNO_DEFAULT_DB_ID": "main-db",
        "AGNO_POOL_MIN_SIZE": "1",
        "AGNO_POOL_MAX_SIZE": "3",
        "AGNO_REQUEST_TIMEOUT_S": str(timeout_s),
    }
    return dataclasses.replace(load_settings(env), readiness_interval_s=0.2)


async def _ask_all(client: Any) -> list[tuple[str, int, dict[str, Any], str | None, float]]:
    answers = []
    for method, path, body in REQUESTS:
        started = time.monotonic()
        resp = await client.request(method, path, json=body)
        answers.append((f"{method} {path}", resp.status, await resp.json(), resp.headers.get("Retry-After"), 0.0))
        answers[-1] = (*answers[-1][:4], time.monotonic() - started)
    return answers


def _assert_all_unavailable(answers: list[tuple[str, int, dict[str, Any], str | None, float]]) -> None:
    for what, status, body, retry_after, _elapsed in answers:
        assert status == 503, (what, status, body)
        assert set(body) == {"detail"} and body["detail"].startswith("Database unavailable ("), (what, body)
        assert retry_after == str(RETRY_AFTER_S), what


async def _create(client: Any, session_id: str) -> None:
    resp = await client.post("/sessions?type=agent", json={"session_id": session_id, "agent_id": "a"})
    assert resp.status == 201, await resp.text()


async def test_a_stopped_database_is_503_and_back_without_a_restart(aiohttp_client: Any, own_pg: StoppablePg) -> None:
    client = await aiohttp_client(create_app(_settings(own_pg.dsn)))
    await _create(client, "away-1")
    own_pg.stop()
    try:
        answers = await _ask_all(client)
    finally:
        own_pg.start()
    _assert_all_unavailable(answers)
    # Back as soon as Postgres is: the same app, no restart, the row written before still there.
    for _ in range(100):
        resp = await client.get("/sessions/away-1")
        if resp.status == 200:
            break
        await asyncio.sleep(0.1)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["session_id"] == "away-1"


async def test_a_stalled_database_is_answered_within_the_request_timeout(
    aiohttp_client: Any, own_pg: StoppablePg, stalling_proxy: StallingProxy
) -> None:
    timeout_s = 2
    client = await aiohttp_client(create_app(_settings(stalling_proxy.dsn, timeout_s)))
    await _create(client, "stall-1")
    stalling_proxy.stall()
    try:
        answers = await _ask_all(client)
    finally:
        stalling_proxy.resume()
    for what, status, body, _retry, elapsed in answers:
        # 503 from the database timeouts (half the request timeout), or at worst the request
        # deadline's 504: an answer in JSON, never a hang and never a 500.
        assert status in (503, 504), (what, status, body)
        assert set(body) == {"detail"}, body
        assert elapsed < timeout_s + 1.5, (what, elapsed)
    assert any(status == 503 for _w, status, *_ in answers)
    for _ in range(100):
        resp = await client.get("/sessions/stall-1")
        if resp.status == 200:
            break
        await asyncio.sleep(0.1)
    assert resp.status == 200, await resp.text()


async def test_a_connection_lost_in_the_middle_of_a_query_is_503(
    aiohttp_client: Any, own_pg: StoppablePg, stalling_proxy: StallingProxy
) -> None:
    client = await aiohttp_client(create_app(_settings(stalling_proxy.dsn, 30)))
    await _create(client, "lost-1")
    stalling_proxy.stall()
    pending = asyncio.ensure_future(client.get("/sessions/lost-1"))
    await asyncio.sleep(0.5)  # the query has been sent and waits for its answer
    assert not pending.done()
    stalling_proxy.reset()
    stalling_proxy.resume()
    resp = await asyncio.wait_for(pending, 20)
    assert resp.status == 503, await resp.text()
    assert (await resp.json())["detail"].startswith("Database unavailable (")
    assert resp.headers["Retry-After"] == str(RETRY_AFTER_S)


async def test_pools_closed_under_a_request_at_shutdown_answer_503(aiohttp_client: Any, own_pg: StoppablePg) -> None:
    app = create_app(_settings(own_pg.dsn))
    client = await aiohttp_client(app)
    await _create(client, "shut-1")
    # What clean-up does at shutdown, while the server still has a request to answer.
    for handle in app[DATABASES].values():
        await handle.pool.close()
    _assert_all_unavailable(await _ask_all(client))


async def test_the_classes_decide_not_the_text(own_pg: StoppablePg) -> None:
    pool = await asyncpg.create_pool(own_pg.dsn, min_size=1, max_size=1)
    try:
        # A programming error reported as InterfaceError stays a 500 while the pools are open.
        assert not database_unavailable(asyncpg.InterfaceError("pool is closing"), [pool])
        assert not database_unavailable(ValueError("connection refused"), [pool])
        assert database_unavailable(asyncpg.InternalClientError("x"), [pool])
        assert database_unavailable(ConnectionRefusedError(), [pool])
        assert database_unavailable(TimeoutError(), [pool])
        assert database_unavailable(asyncpg.exceptions.AdminShutdownError("x"), [pool])
        assert database_unavailable(asyncpg.exceptions.TooManyConnectionsError("x"), [pool])
        # A transaction's "connection is closed" raised while handling the connection's failure.
        try:
            try:
                raise asyncpg.InternalClientError("cannot switch to state 12")
            except asyncpg.InternalClientError:
                raise asyncpg.InterfaceError("the underlying connection is closed") from None
        except asyncpg.InterfaceError as exc:
            assert not database_unavailable(exc, [pool])  # `from None`: no cause, and no context shown
        try:
            try:
                raise asyncpg.InternalClientError("cannot switch to state 12")
            except asyncpg.InternalClientError:
                raise asyncpg.InterfaceError("the underlying connection is closed")  # noqa: B904
        except asyncpg.InterfaceError as exc:
            assert database_unavailable(exc, [pool])
    finally:
        await pool.close()
    assert database_unavailable(asyncpg.InterfaceError("anything"), [pool])


@pytest.fixture(autouse=True)
def _running(own_pg: StoppablePg) -> None:
    """Each test starts with the database up, whatever the one before did."""
    own_pg.start()


def test_a_request_in_flight_at_sigterm_gets_a_json_answer(own_pg: StoppablePg, stalling_proxy: StallingProxy) -> None:
    """SIGTERM while a request waits on a stalled database: the service drains it (an answer in
    JSON, not a 500 and not a dropped connection, which `asyncio.run` gave) and exits 0."""
    proc = ServiceProcess(
        {
            "AGNO_PG_DSN": stalling_proxy.dsn,
            "AGNO_DEFAULT_DB_ID": "main-db",
            "AGNO_REQUEST_TIMEOUT_S": "4",
            "AGNO_LOG_LEVEL": "WARNING",
        },
        name="native-sigterm",
    )
    try:
        stalling_proxy.stall()
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pending = pool.submit(httpx.get, proc.url + "/sessions/in-flight", timeout=30)
            time.sleep(0.5)
            assert not pending.done()
            proc.proc.send_signal(signal.SIGTERM)
            resp = pending.result(timeout=30)
        # The database's timeout (503) or the request deadline (504): JSON either way.
        assert resp.status_code in (503, 504), resp.text
        assert set(resp.json()) == {"detail"}
        assert proc.proc.wait(timeout=30) == 0, proc.output()[-2000:]
    finally:
        stalling_proxy.resume()
        proc.stop()
    assert "unhandled error" not in proc.output()
