"""The two sides as the gateway calls them: legacy over HTTP, native in-process (its aiohttp
app runs inside the gateway, no extra hop) or over HTTP. Each call gives an `Answer`: the
`Response` (with `error` set when there was no HTTP answer), its latency, and whether the
request may have reached the side, which decides if a write may be retried elsewhere."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.streams import StreamReader
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from comparator import Request, Response, Side
from comparator.fetch import exact_url, without_silent_retry


@dataclass(frozen=True)
class Answer:
    response: Response
    elapsed_s: float
    reached: bool  # False only when the request provably never reached the side
    timed_out: bool = False

    @property
    def failed(self) -> bool:
        """No answer, or a 5xx: what the fallback to legacy covers."""
        return self.response.error is not None or self.response.status >= 500


@dataclass(frozen=True)
class Inbound:
    """What the in-process native side needs of the client's request to build its own: the
    parsed request line and the connection it came on (for the peer address)."""

    message: Any
    protocol: Any
    writer: Any
    task: Any


class HttpSide:
    """A side at a base URL. Reads go through a pool of kept-alive connections; writes always
    get a fresh connection, because a pooled one may have been closed by the server without
    notice (uvicorn does, after an unhandled error), and a write sent on it cannot be safely
    sent again, while a read can."""

    def __init__(self, side: Side, base_url: str, max_connections: int) -> None:
        self.side = side
        self.base_url = base_url.rstrip("/")
        self._max_connections = max_connections
        self._pooled: aiohttp.ClientSession | None = None
        self._fresh: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._pooled = _session(aiohttp.TCPConnector(limit=self._max_connections))
        self._fresh = _session(aiohttp.TCPConnector(limit=self._max_connections, force_close=True))

    async def close(self) -> None:
        for session in (self._pooled, self._fresh):
            if session is not None:
                await session.close()

    async def send(self, request: Request, timeout_s: float, inbound: Inbound | None = None) -> Answer:
        read = request.method in ("GET", "HEAD", "OPTIONS")
        session = self._pooled if read else self._fresh
        assert session is not None, "start() first"
        started = time.perf_counter()
        for attempt in (1, 2):
            try:
                async with session.request(
                    request.method,
                    exact_url(self.base_url + request.target),
                    headers=dict(request.headers),
                    data=request.body or None,
                    allow_redirects=False,
                    timeout=aiohttp.ClientTimeout(total=timeout_s),
                ) as r:
                    body = await r.read()
                    headers = {k: v for k, v in r.headers.items()}
                    return Answer(Response(r.status, headers, body, self.side), time.perf_counter() - started, True)
            except aiohttp.ClientConnectorError as exc:  # the connection was never made
                return _failed(self.side, exc, started, reached=False)
            except TimeoutError as exc:
                return _failed(self.side, exc, started, reached=True, timed_out=True)
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
                # A pooled connection the server had closed: a read is safe to send again.
                if attempt == 2 or not read:
                    return _failed(self.side, exc, started, reached=True)
            except (aiohttp.ClientError, OSError) as exc:
                return _failed(self.side, exc, started, reached=True)
        raise AssertionError("unreachable")


def _session(connector: aiohttp.TCPConnector) -> aiohttp.ClientSession:
    return without_silent_retry(aiohttp.ClientSession(connector=connector, auto_decompress=False))


class InProcessNative:
    """The native service's own aiohttp app, called directly: its router, middlewares and
    handlers run on a request built from the client's, without a socket in between.

    The one private touchpoint is `Application._handle` (request -> response through the app's
    router and middlewares), the call aiohttp's own server makes; tests pin it."""

    side: Side = "native"

    def __init__(self, app: web.Application) -> None:
        self.app = app

    async def start(self) -> None:
        self.app.freeze()
        await self.app.startup()

    async def close(self) -> None:
        await self.app.cleanup()

    def _build(self, request: Request, inbound: Inbound) -> web.Request:
        loop = asyncio.get_running_loop()
        headers = CIMultiDictProxy(CIMultiDict(request.headers))
        raw_headers = tuple((k.encode(), v.encode()) for k, v in headers.items())
        message = inbound.message._replace(
            method=request.method,
            path=request.target,
            url=URL(request.target, encoded=True),
            headers=headers,
            raw_headers=raw_headers,
        )
        # The body is already read; a stream of just that body, large enough never to ask the
        # client's connection for flow control.
        payload = StreamReader(inbound.protocol, max(len(request.body) + 1, 2**16), loop=loop)
        if request.body:
            payload.feed_data(request.body)
        payload.feed_eof()
        return web.Request(
            message,
            payload,
            inbound.protocol,
            inbound.writer,
            inbound.task,
            loop,
            client_max_size=max(len(request.body) + 1, 1024**2),
        )

    async def send(self, request: Request, timeout_s: float, inbound: Inbound | None = None) -> Answer:
        assert inbound is not None, "the in-process side needs the client's request"
        started = time.perf_counter()
        try:
            async with asyncio.timeout(timeout_s):
                response = await self.app._handle(self._build(request, inbound))
        except web.HTTPException as exc:
            response = exc
        except TimeoutError as exc:
            return _failed(self.side, exc, started, reached=True, timed_out=True)
        except Exception as exc:  # the native app's middleware answers its own crashes; this is a last resort
            return _failed(self.side, exc, started, reached=True)
        body = response.body if isinstance(response, web.Response) and isinstance(response.body, bytes) else b""
        headers = {k: v for k, v in response.headers.items()}
        return Answer(Response(response.status, headers, body, self.side), time.perf_counter() - started, True)


def _failed(side: Side, exc: BaseException, started: float, *, reached: bool, timed_out: bool = False) -> Answer:
    detail = f"{type(exc).__name__}: {exc}".rstrip(": ")
    return Answer(Response.failed(detail, side), time.perf_counter() - started, reached, timed_out)
