"""The in-process native side's own semantics, those `HttpSide` has over a connection: a timeout
is an `Answer` with `timed_out` (and a write is still finished by the service, as a server
finishes one whose client stopped waiting; a read is dropped), an answer over the caller's
limit is `too_large` unread, at most `max_connections` calls run at once, and `close()` lets
writes in flight end before the pools close."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from comparator import Request
from session_service import views
from session_service.app import create_app as create_native_app
from session_service.config import load_settings
from shadow_proxy.sides import InProcessNative

GET = Request("GET", "/sessions/s-agent-1", {}, b"")
DELETE = Request("DELETE", "/sessions/no-such-session-inprocess", {}, b"")


def _side(pg_dsn: str, max_connections: int = 100) -> InProcessNative:
    settings = load_settings({"AGNO_PG_DSN": pg_dsn, "AGNO_DEFAULT_DB_ID": "main-db"})
    return InProcessNative(create_native_app(settings, access_log_level=logging.DEBUG), max_connections)


@pytest.fixture
async def side(pg_dsn: str, seeded: None) -> AsyncIterator[InProcessNative]:
    started = _side(pg_dsn)
    await started.start()
    try:
        yield started
    finally:
        await started.close()


def _slow(monkeypatch: pytest.MonkeyPatch, delay_s: float, log: list[str], view: str = "get_session") -> None:
    """`view` takes `delay_s`, then answers as usual; `log` records its steps."""
    real = views.HANDLERS[view]
    running = [0]

    async def slow(request: Any, path: dict[str, str]) -> Any:
        running[0] += 1
        log.append(f"start {running[0]}")
        try:
            await asyncio.sleep(delay_s)
            answer = await real(request, path)
            log.append("answered")
            return answer
        finally:
            running[0] -= 1
            log.append("done")

    monkeypatch.setitem(views.HANDLERS, view, slow)


async def test_a_timed_out_write_still_ends(side: InProcessNative, monkeypatch: pytest.MonkeyPatch) -> None:
    log: list[str] = []
    _slow(monkeypatch, 0.5, log, "delete_session")
    answer = await side.send(DELETE, 0.1)
    assert (answer.timed_out, answer.reached, answer.response.status, answer.drop_reason) == (True, True, 0, "timeout")
    assert answer.response.error and answer.response.error.startswith("TimeoutError")
    assert log == ["start 1"]  # not cut off where the gateway stopped waiting
    await asyncio.sleep(0.8)
    assert log == ["start 1", "answered", "done"]


async def test_a_timed_out_read_is_dropped(side: InProcessNative, monkeypatch: pytest.MonkeyPatch) -> None:
    log: list[str] = []
    _slow(monkeypatch, 0.5, log)
    answer = await side.send(GET, 0.1)
    assert (answer.timed_out, answer.reached, answer.response.status) == (True, True, 0)
    assert log == ["start 1", "done"]  # cancelled: nothing was answered, nothing is left running
    await asyncio.sleep(0.6)
    assert log == ["start 1", "done"]


async def test_an_answer_over_the_limit_is_too_large(side: InProcessNative) -> None:
    whole = await side.send(GET, 10)
    assert whole.response.status == 200 and len(whole.response.body) > 100
    answer = await side.send(GET, 10, max_body_bytes=100)
    assert (answer.too_large, answer.reached, answer.drop_reason) == (True, True, "body_too_large")
    assert answer.response.body == b"" and "over the limit of 100" in (answer.response.error or "")
    assert (await side.send(GET, 10, max_body_bytes=len(whole.response.body))).response.body == whole.response.body


async def test_at_most_max_connections_calls_run_at_once(
    pg_dsn: str, seeded: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    log: list[str] = []
    _slow(monkeypatch, 0.2, log)
    side = _side(pg_dsn, max_connections=1)
    await side.start()
    try:
        answers = await asyncio.gather(*(side.send(GET, 10) for _ in range(3)))
    finally:
        await side.close()
    assert [a.response.status for a in answers] == [200, 200, 200]
    assert log == ["start 1", "answered", "done"] * 3  # one at a time


async def test_close_lets_a_write_in_flight_end_first(
    pg_dsn: str, seeded: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    log: list[str] = []
    _slow(monkeypatch, 0.3, log, "delete_session")
    side = _side(pg_dsn)
    await side.start()
    answer = await side.send(DELETE, 0.05)  # the gateway stops waiting; the write goes on
    assert answer.timed_out
    await side.close()
    assert log == ["start 1", "answered", "done"]


async def test_a_target_no_client_could_send_never_reaches_the_core(side: InProcessNative) -> None:
    answer = await side.send(Request("GET", "http://[bad", {}, b""), 10)
    assert (answer.reached, answer.response.status) == (False, 0)
    assert answer.response.error and "ValueError" in answer.response.error
