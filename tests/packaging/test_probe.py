"""`agentos-session probe`: 0 only for a 200 from a /readyz, else 1 with the reason on stderr.
Against real HTTP servers (aiohttp on 127.0.0.1) and a port nothing listens on."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from agentos_session.probe import DEFAULT_URLS
from tests.commands import Run, run_command
from tests.legacy.fixtures import free_port


def readyz(status: int) -> web.Application:
    async def view(_: web.Request) -> web.Response:
        if status == 200:
            return web.json_response({"status": "ready"})
        return web.json_response({"status": "not_ready", "not_ready": {"store": "connection refused"}}, status=status)

    app = web.Application()
    app.router.add_get("/readyz", view)
    return app


async def probe(*argv: str) -> Run:
    return await asyncio.to_thread(run_command, "probe", *argv)  # urllib blocks; the servers need the loop


async def test_ready_is_exit_0(aiohttp_server: Any) -> None:
    server = await aiohttp_server(readyz(200))
    run = await probe("--url", str(server.make_url("/readyz")))
    assert (run.code, run.err) == (0, "")
    assert str(server.make_url("/readyz")) in run.out


async def test_not_ready_is_exit_1_naming_what(aiohttp_server: Any) -> None:
    server = await aiohttp_server(readyz(503))
    run = await probe("--url", str(server.make_url("/readyz")))
    assert run.code == 1 and run.out == ""
    assert "503" in run.err and '"store": "connection refused"' in run.err


async def test_nothing_listening_is_exit_1() -> None:
    url = f"http://127.0.0.1:{free_port()}/readyz"
    run = await probe("--url", url, "--timeout", "2")
    assert run.code == 1 and url in run.err and "no answer" in run.err


async def test_urls_are_tried_in_order_until_one_is_ready(aiohttp_server: Any) -> None:
    down, ready = f"http://127.0.0.1:{free_port()}/readyz", await aiohttp_server(readyz(200))
    not_ready = await aiohttp_server(readyz(503))
    run = await probe(
        "--url", down, "--url", str(not_ready.make_url("/readyz")), "--url", str(ready.make_url("/readyz"))
    )
    assert run.code == 0 and str(ready.make_url("/readyz")) in run.out
    run = await probe("--url", str(not_ready.make_url("/readyz")), "--url", down)
    assert run.code == 1 and len(run.err.splitlines()) == 2  # one reason per URL


async def test_a_hanging_server_is_exit_1_after_the_timeout(aiohttp_server: Any) -> None:
    async def hang(_: web.Request) -> web.Response:
        await asyncio.sleep(10)
        return web.Response()

    app = web.Application()
    app.router.add_get("/readyz", hang)
    server = await aiohttp_server(app)
    run = await probe("--url", str(server.make_url("/readyz")), "--timeout", "0.3")
    assert run.code == 1 and "timed out" in run.err


async def test_timeout_must_be_positive() -> None:
    assert (await probe("--url", "http://127.0.0.1:1/readyz", "--timeout", "0")).code == 2


def test_default_urls_are_the_gateway_then_the_native_service() -> None:
    assert DEFAULT_URLS == ("http://127.0.0.1:8090/readyz", "http://127.0.0.1:8080/readyz")
