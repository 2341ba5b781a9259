"""The comparator's I/O: UrlTarget against real servers (headers, verbatim targets, failures,
the one retry of idempotent requests), AiohttpAppTarget's lifecycle, AsgiTarget, target_for."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import JSONResponse
from starlette.responses import Response as StarletteResponse
from starlette.routing import Route

from comparator import Request, Response
from comparator.fetch import AiohttpAppTarget, AsgiTarget, UrlTarget, target_for


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def recording_app(seen: list[dict[str, Any]]) -> web.Application:
    """Answers every path; records what arrived (raw target, method, headers, body)."""

    async def any_path(request: web.Request) -> web.Response:
        body = await request.read()
        seen.append(
            {
                "method": request.method,
                "raw_path": request.raw_path,
                "token": request.headers.get("X-Token"),
                "body": body,
            }
        )
        response = web.json_response(
            {"path": request.path, "n": len(seen)}, status=201 if request.method == "POST" else 200
        )
        response.headers.add("X-Multi", "one")
        response.headers.add("X-Multi", "two")
        return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", any_path)
    return app


@pytest.fixture
async def url_target(aiohttp_server: Any) -> AsyncIterator[tuple[UrlTarget, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []
    server = await aiohttp_server(recording_app(seen))
    target = UrlTarget(str(server.make_url("")) + "/", side="native")
    try:
        yield target, seen
    finally:
        await target.close()


# ---- UrlTarget -------------------------------------------------------------------------------


async def test_url_target_status_headers_body(url_target):
    """Status, headers and body bytes come back as sent by the server, labelled with the side."""
    target, seen = url_target
    r = await target.send(Request("POST", "/things", {"X-Token": "abc"}, b'{"k":1}'))
    assert r.status == 201
    assert r.error is None
    assert r.side == "native"
    assert json.loads(r.body) == {"path": "/things", "n": 1}
    assert r.header("content-type") == "application/json; charset=utf-8"
    assert r.header("CONTENT-LENGTH") == str(len(r.body))
    assert seen == [{"method": "POST", "raw_path": "/things", "token": "abc", "body": b'{"k":1}'}]


async def test_url_target_joins_multi_valued_headers(url_target):
    """A header sent twice is one entry, its values joined with ", " in order."""
    target, _ = url_target
    r = await target.send(Request("GET", "/"))
    assert r.headers["X-Multi"] == "one, two"
    assert r.header("x-multi") == "one, two"


async def test_url_target_sends_the_target_verbatim(url_target):
    """An encoded slash, a double slash and repeated query keys arrive byte for byte."""
    target, seen = url_target
    r = await target.send(Request("GET", "/x%2Fy//z?q=1&q=2"))
    assert r.status == 200
    assert seen[-1]["raw_path"] == "/x%2Fy//z?q=1&q=2"
    await target.send(Request("GET", "/a%20b?x=%41"))
    assert seen[-1]["raw_path"] == "/a%20b?x=%41"


async def test_url_target_quotes_non_ascii_and_spaces(url_target):
    """A target that is not a valid URL (non-ASCII, a space) is percent-encoded, not rejected."""
    target, seen = url_target
    r = await target.send(Request("GET", "/café?q=é"))
    assert r.status == 200, r.error
    assert seen[-1]["raw_path"] == "/caf%C3%A9?q=%C3%A9"
    assert json.loads(r.body)["path"] == "/café"
    await target.send(Request("GET", "/a b"))
    assert seen[-1]["raw_path"] == "/a%20b"


async def test_url_target_reuses_one_session(url_target):
    """Consecutive requests go through one client session; close() ends it and a new send opens another."""
    target, seen = url_target
    await target.send(Request("GET", "/1"))
    session = target._session
    await target.send(Request("GET", "/2"))
    assert target._session is session
    await target.close()
    assert session.closed and target._session is None
    r = await target.send(Request("GET", "/3"))
    assert r.status == 200 and len(seen) == 3


async def test_url_target_connection_refused_is_a_failed_response():
    """Nothing listening: a Response with status 0 and `error` set, not an exception."""
    target = UrlTarget(f"http://127.0.0.1:{free_port()}", side="legacy")
    try:
        r = await target.send(Request("GET", "/x"))
    finally:
        await target.close()
    assert r.status == 0
    assert r.error and "Connect" in r.error
    assert r.side == "legacy"
    assert r.body == b"" and dict(r.headers) == {}


async def test_url_target_timeout_is_a_failed_response(aiohttp_server):
    """A side slower than the timeout gives a failed Response."""

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(1)
        return web.Response()

    app = web.Application()
    app.router.add_get("/slow", slow)
    server = await aiohttp_server(app)
    target = UrlTarget(str(server.make_url("")), timeout_s=0.1)
    try:
        r = await target.send(Request("GET", "/slow"))
    finally:
        await target.close()
    assert r.status == 0
    assert r.error and "Timeout" in r.error


class ClosingServer:
    """A raw TCP server that closes the first `drops` connections after reading the request
    head, without answering, and answers `{}` afterwards. Counts request heads received."""

    def __init__(self, drops: int) -> None:
        self.drops = drops
        self.heads = 0
        self.server: asyncio.base_events.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        self.heads += 1
        if self.heads <= self.drops:
            writer.close()
            return
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
        )
        await writer.drain()
        writer.close()

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *exc: Any) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


async def send_once(closing: ClosingServer, request: Request) -> Response:
    async with closing as base:
        target = UrlTarget(base)
        try:
            return await target.send(request)
        finally:
            await target.close()


async def test_get_is_retried_once_after_a_dropped_connection():
    """A GET whose connection is closed unanswered is sent once more, and the second answer counts."""
    closing = ClosingServer(drops=1)
    r = await send_once(closing, Request("GET", "/x"))
    assert closing.heads == 2
    assert r.error is None and r.status == 200 and r.body == b"{}"


async def test_get_is_retried_only_once():
    """A server that keeps dropping the connection sees the GET twice, then the side has failed."""
    closing = ClosingServer(drops=10)
    r = await send_once(closing, Request("GET", "/x"))
    assert closing.heads == 2
    assert r.status == 0 and r.error


@pytest.mark.parametrize("method", ["POST", "PATCH", "PUT", "DELETE"])
async def test_non_read_is_not_retried_after_a_dropped_connection(method: str):
    """A write whose connection is closed unanswered is not sent again: the side has failed."""
    closing = ClosingServer(drops=1)
    r = await send_once(closing, Request(method, "/x", {"Content-Type": "application/json"}, b"{}"))
    assert closing.heads == 1
    assert r.status == 0
    assert r.error and "Disconnected" in r.error


# ---- AiohttpAppTarget ------------------------------------------------------------------------


async def test_aiohttp_app_target_runs_startup_and_cleanup_hooks():
    """The app is started with its on_startup hooks on first use, and close() runs on_cleanup."""
    events: list[str] = []

    async def startup(app: web.Application) -> None:
        events.append("startup")

    async def cleanup(app: web.Application) -> None:
        events.append("cleanup")

    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"started": events.copy()})

    app = web.Application()
    app.on_startup.append(startup)
    app.on_cleanup.append(cleanup)
    app.router.add_get("/hello", hello)
    target = AiohttpAppTarget(app, side="legacy")
    assert events == []  # nothing starts before the first request
    r = await target.send(Request("GET", "/hello"))
    assert json.loads(r.body) == {"started": ["startup"]}
    assert r.side == "legacy"
    await target.send(Request("GET", "/hello"))
    assert events == ["startup"]  # started once
    await target.close()
    assert events == ["startup", "cleanup"]


async def test_aiohttp_app_target_close_without_use():
    """Closing a target that never sent anything does nothing and does not start the app."""
    events: list[str] = []

    async def startup(app: web.Application) -> None:
        events.append("startup")

    app = web.Application()
    app.on_startup.append(startup)
    await AiohttpAppTarget(app).close()
    assert events == []


# ---- AsgiTarget ------------------------------------------------------------------------------


def starlette_app() -> Starlette:
    async def echo(request: StarletteRequest) -> StarletteResponse:
        body = await request.body()
        response = JSONResponse(
            {
                "method": request.method,
                "path": request.url.path,
                "query": request.url.query,
                "token": request.headers.get("x-token"),
                "body": body.decode(),
            },
            status_code=202,
        )
        response.headers.append("X-Multi", "one")
        response.headers.append("X-Multi", "two")
        return response

    return Starlette(routes=[Route("/echo", echo, methods=["GET", "POST"])])


async def test_asgi_target_sends_to_a_starlette_app():
    """Method, target, headers and body reach the ASGI app; status, joined headers and body come back."""
    target = AsgiTarget(starlette_app(), side="native")
    try:
        r = await target.send(Request("POST", "/echo?a=1&a=2", {"X-Token": "t"}, b"hello"))
        missing = await target.send(Request("GET", "/nope"))
    finally:
        await target.close()
    assert r.status == 202
    assert r.side == "native"
    assert json.loads(r.body) == {"method": "POST", "path": "/echo", "query": "a=1&a=2", "token": "t", "body": "hello"}
    assert r.header("x-multi") == "one, two"
    assert r.header("content-type") == "application/json"
    assert missing.status == 404


# ---- target_for ------------------------------------------------------------------------------


async def test_target_for_dispatches_on_what_it_is_given():
    """URL -> UrlTarget, aiohttp app -> AiohttpAppTarget, a target -> itself, a callable -> AsgiTarget."""
    url = target_for("https://example.invalid:8443/", "legacy")
    assert isinstance(url, UrlTarget) and url.base == "https://example.invalid:8443" and url.side == "legacy"

    app = web.Application()
    wrapped = target_for(app, "native")
    assert isinstance(wrapped, AiohttpAppTarget) and wrapped.app is app and wrapped.side == "native"

    existing = UrlTarget("http://127.0.0.1:1")
    assert target_for(existing) is existing

    asgi = target_for(starlette_app(), "native")
    try:
        assert isinstance(asgi, AsgiTarget) and asgi.side == "native"
        assert (await asgi.send(Request("GET", "/echo"))).status == 202
    finally:
        await asgi.close()


@pytest.mark.parametrize("bad", ["ftp://host/x", "127.0.0.1:8000", "/sessions", ""])
def test_target_for_rejects_strings_that_are_not_http_urls(bad: str):
    """A string that is not an http(s) URL is a ValueError."""
    with pytest.raises(ValueError, match="not an http"):
        target_for(bad)


@pytest.mark.parametrize("bad", [42, None, object(), b"http://x"])
def test_target_for_rejects_other_objects(bad: Any):
    """Anything that is neither a URL, an app nor a target is a TypeError."""
    with pytest.raises(TypeError, match="cannot send requests"):
        target_for(bad)
