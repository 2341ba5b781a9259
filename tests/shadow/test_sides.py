"""The sides on public APIs: the in-process native service called through its core (its pools
opened and closed with the side, the client's address still seen and logged at DEBUG), aiohttp's
silent resend switched off for real (a server that drops a kept-alive connection sees one
DELETE, not two), and no private aiohttp attribute anywhere in shadow_proxy."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from yarl import URL

from comparator import Request
from comparator.fetch import request_once_more_if_safe, without_silent_retry
from session_service.app import create_app as create_native_app
from session_service.appkeys import DATABASES
from session_service.config import load_settings
from shadow_proxy.appkeys import GATEWAY
from shadow_proxy.sides import HttpSide, InProcessNative
from tests.shadow.conftest import GatewayFactory, gateway_config

SHADOW_PROXY = Path(__file__).resolve().parents[2] / "shadow_proxy"


# ---- aiohttp's silent resend ------------------------------------------------------------------


class DroppingServer:
    """A raw HTTP/1.1 server: the first request on a connection gets a kept-alive 200; the
    next one on that connection is read, counted, and the connection closed without an answer
    (what uvicorn does after an unhandled error)."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.server: asyncio.Server | None = None

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        answered = False
        try:
            for _ in range(10):  # bounded: a connection carries at most a few requests here
                head = await reader.readuntil(b"\r\n\r\n")
                self.seen.append(head.split(b" ", 1)[0].decode())
                if answered:
                    break
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok")
                await writer.drain()
                answered = True
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aexit__(self, *_: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


async def deletes_after_a_drop(session: aiohttp.ClientSession, base: str) -> BaseException | None:
    """GET (keeps the connection), then DELETE on that same connection, which the server drops."""
    async with session.get(base + "/first") as r:
        assert r.status == 200
        await r.read()
    try:
        async with session.delete(base + "/sessions/x") as r:
            await r.read()
    except aiohttp.ClientError as exc:
        return exc
    return None


async def test_a_dropped_kept_alive_delete_is_not_silently_resent() -> None:
    server = DroppingServer()
    async with server as base, without_silent_retry(aiohttp.ClientSession()) as session:
        error = await deletes_after_a_drop(session, base)
    assert isinstance(error, aiohttp.ServerDisconnectedError)
    assert server.seen == ["GET", "DELETE"]  # sent once; deciding to resend is the caller's


async def test_without_the_switch_aiohttp_would_resend_it() -> None:
    """The control: what the switch prevents does happen with aiohttp's default (if this ever
    fails, aiohttp changed its retry and the switch above should be revisited)."""
    server = DroppingServer()
    async with server as base, aiohttp.ClientSession() as session:
        await deletes_after_a_drop(session, base)
    assert server.seen.count("DELETE") == 2


async def test_the_one_retry_loop_resends_a_read_and_never_a_write() -> None:
    """`request_once_more_if_safe` (used by the gateway's sides and the comparator's targets):
    a read whose kept-alive connection was dropped goes once more on a new connection; a
    DELETE is raised to the caller after one send."""
    server = DroppingServer()
    async with server as base, without_silent_retry(aiohttp.ClientSession()) as session:
        first = await request_once_more_if_safe(session, "GET", URL(base + "/a"))
        again = await request_once_more_if_safe(session, "GET", URL(base + "/b"))  # dropped, resent anew
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await request_once_more_if_safe(session, "DELETE", URL(base + "/sessions/x"))
    assert (first[0], first[2], again[0], again[2]) == (200, b"ok", 200, b"ok")
    assert server.seen == ["GET", "GET", "GET", "DELETE"]  # the DELETE on the resend's kept connection


async def test_a_side_keeps_no_cookie_between_clients(aiohttp_server: Any) -> None:
    """An upstream's Set-Cookie goes back to the client that got it, never with the next request."""
    from aiohttp import web

    async def echo(request: web.Request) -> web.Response:
        response = web.Response(text=request.headers.get("Cookie", "none"))
        response.set_cookie("sid", "client-a-secret")
        return response

    app = web.Application()
    app.router.add_get("/", echo)
    server = await aiohttp_server(app)
    # A host name, as in a deployment (`http://legacy:7777`): aiohttp's jar ignores IP hosts.
    side = HttpSide("legacy", f"http://localhost:{server.port}", 4)
    await side.start()
    try:
        first = await side.send(Request("GET", "/", {}, b""), 10)
        second = await side.send(Request("GET", "/", {}, b""), 10)
    finally:
        await side.close()
    assert "client-a-secret" in first.response.headers["Set-Cookie"]
    assert (first.response.body, second.response.body) == (b"none", b"none")


def test_a_missing_switch_fails_loudly() -> None:
    class Renamed:  # a ClientSession of a release without `_retry_connection`
        __slots__ = ()

    with pytest.raises(RuntimeError, match="_retry_connection"):
        without_silent_retry(Renamed())  # type: ignore[arg-type]  # stands in for a renamed ClientSession


# ---- the in-process native side ---------------------------------------------------------------


@pytest.fixture
async def native_side(pg_dsn: str, seeded: None) -> AsyncIterator[InProcessNative]:
    settings = load_settings({"AGNO_PG_DSN": pg_dsn, "AGNO_DEFAULT_DB_ID": "main-db"})
    side = InProcessNative(create_native_app(settings, access_log_level=logging.DEBUG))
    await side.start()
    try:
        yield side
    finally:
        await side.close()


async def test_the_in_process_side_opens_its_pools_and_closes_them(pg_dsn: str, seeded: None) -> None:
    """No socket and no runner: `start()` opens the core's databases through the app's public
    `startup()`, `close()` closes them through `cleanup()`."""
    settings = load_settings({"AGNO_PG_DSN": pg_dsn, "AGNO_DEFAULT_DB_ID": "main-db"})
    side = InProcessNative(create_native_app(settings))
    await side.start()
    handles = list(side.app[DATABASES].values())
    try:
        assert handles and not any(h.pool.is_closing() for h in handles)
        answer = await side.send(Request("GET", "/sessions/s-agent-1", {}, b""), 10)
        assert (answer.response.status, answer.response.side, answer.reached) == (200, "native", True)
    finally:
        await side.close()
    assert all(h.pool.is_closing() for h in handles)


async def test_native_believes_forwarding_only_from_the_gateway(
    native_side: InProcessNative, caplog: pytest.LogCaptureFixture
) -> None:
    """Called in-process by the gateway, the gateway's last X-Forwarded-For hop is the client;
    its access line is at DEBUG. Served on TCP (no trusted proxies), the same header is ignored."""
    headers = {"X-Forwarded-For": "203.0.113.9, 198.51.100.7", "X-Request-ID": "sides-unix"}
    with caplog.at_level(logging.DEBUG, logger="session_service.access"):
        answer = await native_side.send(Request("GET", "/sessions/s-agent-1", headers, b""), 10)
    assert answer.response.status == 200
    [line] = [r for r in caplog.records if r.name == "session_service.access"]
    assert line.levelno == logging.DEBUG
    assert line.fields["client_ip"] == "198.51.100.7"  # type: ignore[attr-defined]  # set by observe


async def test_a_tcp_peer_is_never_taken_for_the_gateway(
    pg_dsn: str, seeded: None, aiohttp_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings({"AGNO_PG_DSN": pg_dsn, "AGNO_DEFAULT_DB_ID": "main-db"})
    app = create_native_app(settings)
    client = await aiohttp_client(app)
    with caplog.at_level(logging.INFO, logger="session_service.access"):
        r = await client.get("/sessions/s-agent-1", headers={"X-Forwarded-For": "203.0.113.9"})
    assert r.status == 200
    lines = [rec for rec in caplog.records if rec.name == "session_service.access"]
    assert [rec.fields["client_ip"] for rec in lines] == ["127.0.0.1"]  # type: ignore[attr-defined]


async def test_the_gateway_passes_the_client_address_to_in_process_native(
    make_gateway: GatewayFactory, legacy_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    import dataclasses

    config = gateway_config(legacy_url)
    config = dataclasses.replace(config, groups=tuple(dataclasses.replace(g, stage="native") for g in config.groups))
    client = await make_gateway(config)
    assert isinstance(client.app[GATEWAY].native, InProcessNative)
    with caplog.at_level(logging.DEBUG):
        r = await client.get("/sessions/s-agent-1", headers={"X-Request-ID": "sides-gw"})
    assert r.status == 200
    lines = {rec.name: rec for rec in caplog.records if getattr(rec, "fields", {}).get("request_id") == "sides-gw"}
    native, gateway = lines["session_service.access"], lines["shadow_proxy.access"]
    assert (native.levelno, gateway.levelno) == (logging.DEBUG, logging.INFO)
    assert native.fields["client_ip"] == gateway.fields["client_ip"] == "127.0.0.1"  # type: ignore[attr-defined]


# ---- no private aiohttp API -------------------------------------------------------------------


def test_shadow_proxy_uses_no_private_attribute_of_another_object() -> None:
    """`obj._name` on anything but `self`/`cls` is someone else's private API (the one pinned
    exception, aiohttp's retry switch, lives in comparator/fetch.py with its test above)."""
    private = re.compile(r"\b(?!self\b|cls\b)[A-Za-z_]\w*\._[a-z]\w*")
    found = [
        f"{path.name}:{number}: {line.strip()}"
        for path in sorted(SHADOW_PROXY.glob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if private.search(line.split("#", 1)[0]) and not line.lstrip().startswith(('"', "`"))
    ]
    assert found == []


def test_the_private_socket_dir_is_made_by_mkdtemp() -> None:
    """mkdtemp makes its directory 0700 whatever the umask; the side relies on that."""
    import tempfile

    previous = os.umask(0)
    try:
        made = tempfile.mkdtemp(prefix="agentos-native-")
    finally:
        os.umask(previous)
    try:
        assert stat.S_IMODE(os.stat(made).st_mode) == 0o700
    finally:
        os.rmdir(made)
