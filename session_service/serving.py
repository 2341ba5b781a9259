"""Serving the app with bounds on slow, idle and too many clients.

aiohttp bounds none of these by default in a way an internet-facing service needs:

* **Request head and idle time** (`AGNO_IDLE_TIMEOUT_S`, default 15 s): aiohttp's keep-alive
  timer starts when a connection opens and again after each response, and closes the connection
  if no complete request head has arrived by then; bytes trickling in do not reset it. So a client
  that sends its headers one byte per second, or opens a connection and sends nothing, is cut off
  after this long. (`web.run_app`'s default is 75 s.)
* **Request body**: read by the app's adapter (session_service/app.py `serve`) under the request
  timeout (`AGNO_REQUEST_TIMEOUT_S`), so a slow body is bounded: 504 JSON.
* **Connections** (`AGNO_MAX_CONNECTIONS`, default 1000): a connection over the limit is answered
  `503 {"detail":"Too many connections"}` with `Retry-After` and closed at once, before it reaches
  aiohttp, so it costs no request handler.

`run()` is `web.run_app` with these: the same signals (SIGINT/SIGTERM: graceful shutdown with
`shutdown_timeout`), the same clean-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import cast

from aiohttp import web

from agentos_session.loop import new_event_loop

from .config import Settings

log = logging.getLogger("session_service")

RETRY_AFTER_S = 1


def _refusal() -> bytes:
    body = json.dumps({"detail": "Too many connections"}, separators=(",", ":")).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"Retry-After: {RETRY_AFTER_S}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body


class _Refuse(asyncio.Protocol):
    """A connection over the limit: one 503 and the connection is closed."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream connection's transport: uvloop's is not a subclass of asyncio.Transport
        # (an isinstance check refused every connection past the limit without its 503).
        stream = cast(asyncio.WriteTransport, transport)
        stream.write(_refusal())
        stream.close()


class ConnectionLimit:
    """A protocol factory around aiohttp's `web.Server` that refuses connections past `limit`
    (counted by the server itself: a connection counts until its handler is done)."""

    def __init__(self, server: web.Server, limit: int) -> None:
        self.server = server
        self.limit = limit
        self.refused = 0

    def __call__(self) -> asyncio.Protocol:
        if len(self.server.connections) >= self.limit:
            self.refused += 1
            return _Refuse()
        return self.server()


class LimitedSite(web.TCPSite):
    """`web.TCPSite` whose listening socket hands connections to a `ConnectionLimit`."""

    def __init__(self, runner: web.AppRunner, host: str, port: int, limit: int) -> None:
        super().__init__(runner, host, port)
        self.limit = limit

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with its runner, as TCPSite does
        server = self._runner.server
        assert isinstance(server, web.Server)
        self._server = await asyncio.get_running_loop().create_server(
            ConnectionLimit(server, self.limit), self._host, self._port, backlog=self._backlog, reuse_address=True
        )


# uvicorn's h11 parser refuses a request head only when 16 KiB of it (max_incomplete_event_size)
# arrive without its end; uvicorn reads 64 KiB at a time, so a head that arrives whole is
# routed up to about that size. aiohttp's defaults (8,190 bytes a line) would answer a long
# query string with a plain-text 400 that agno routes and answers in JSON.
HEAD_LIMIT = 64 * 1024


async def _serve(app: web.Application, settings: Settings, on_listening: Callable[[], None]) -> None:
    runner = web.AppRunner(
        app,
        handle_signals=True,
        access_log=None,
        keepalive_timeout=settings.idle_timeout_s,
        shutdown_timeout=settings.shutdown_timeout_s,
        max_line_size=HEAD_LIMIT,
        max_field_size=HEAD_LIMIT,
    )
    await runner.setup()
    try:
        await LimitedSite(runner, settings.host, settings.port, settings.max_connections).start()
        on_listening()
        while True:  # until a signal raises GracefulExit, as web.run_app waits
            await asyncio.sleep(3600)
    finally:
        await runner.cleanup()


def run(app: web.Application, settings: Settings, on_listening: Callable[[], None] = lambda: None) -> None:
    """Serve `app` until SIGINT/SIGTERM, with the bounds above.

    The loop is driven as `web.run_app` drives it, not by `asyncio.run`: the signal's
    GracefulExit escapes the loop, and `asyncio.run` would then cancel every task at once,
    requests in flight included (their clients would see the connection drop). Here only the
    serving task is cancelled, and its clean-up (`runner.cleanup()`) drains the requests in
    flight for up to `shutdown_timeout_s` before the pools close."""
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    main = loop.create_task(_serve(app, settings, on_listening))
    try:
        loop.run_until_complete(main)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        try:
            if not main.done():
                main.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    loop.run_until_complete(main)
        finally:
            rest = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in rest:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*rest, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            asyncio.set_event_loop(None)
            loop.close()
