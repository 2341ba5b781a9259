"""Sending one `Request` to a side and getting a `Response`: the comparator's only I/O, used by
the CLI and the pytest fixtures. A side is a base URL, an aiohttp `web.Application` (served on
a local test server) or an ASGI app (through httpx's in-process transport)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from multidict import CIMultiDictProxy
from yarl import URL

from agentos_session.routing import SAFE_METHODS

from .model import Request, Response, Side

DEFAULT_TIMEOUT_S = 30.0


class Target(Protocol):
    async def send(self, request: Request) -> Response: ...

    async def close(self) -> None: ...


def _headers(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Multi-valued headers joined with ", " (RFC 9110 §5.3), names as sent."""
    out: dict[str, str] = {}
    for key, value in pairs:
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


def without_silent_retry(session: aiohttp.ClientSession) -> aiohttp.ClientSession:
    """aiohttp silently resends GET/HEAD/OPTIONS/TRACE/PUT/DELETE once when a kept-alive
    connection drops; a resent DELETE that had run answers 404, a false mismatch. Whether a
    request is sent again is the caller's decision.

    There is no public switch: this sets the private `ClientSession._retry_connection`, as
    aiohttp's own TestClient does. If a release renames it, this raises (at start-up, where the
    sessions are made) rather than silently leaving the retry on; tests/shadow/test_sides.py
    pins the behaviour against a real server that drops a kept-alive connection."""
    if not hasattr(session, "_retry_connection"):
        raise RuntimeError(
            f"aiohttp {aiohttp.__version__} has no ClientSession._retry_connection: cannot turn off its "
            "silent resend of requests on a dropped kept-alive connection (see comparator/fetch.py)"
        )
    session._retry_connection = False
    return session


class BodyTooLarge(aiohttp.ClientPayloadError):
    """An answer's body over the caller's `max_bytes`: not read (its connection is closed)."""


async def _read(response: aiohttp.ClientResponse, max_bytes: int | None) -> bytes:
    """The whole body, or BodyTooLarge once it is known to be over `max_bytes` (from its
    Content-Length before reading anything, else after `max_bytes` + 1 bytes): a side that
    answers a huge body costs at most `max_bytes` of memory."""
    if max_bytes is None:
        return await response.read()
    if response.content_length is not None and response.content_length > max_bytes:
        raise BodyTooLarge(f"body of {response.content_length} bytes is over the limit of {max_bytes}")
    body = await response.content.read(max_bytes + 1)
    while len(body) <= max_bytes and not response.content.at_eof():
        more = await response.content.read(max_bytes + 1 - len(body))
        if not more:
            break
        body += more
    if len(body) > max_bytes:
        raise BodyTooLarge(f"body is over the limit of {max_bytes} bytes")
    return body


async def request_once_more_if_safe(
    session: aiohttp.ClientSession, method: str, url: URL, max_bytes: int | None = None, **options: Any
) -> tuple[int, CIMultiDictProxy[str], bytes]:
    """(status, headers, body) of one request. A server may close a kept-alive connection
    (uvicorn does after a 500) just as it is reused: a safe method (RFC 9110) is then sent once
    more on a new connection; anything else is not, since it may have run. Every other error,
    and that one for a write or a second time, is raised for the caller to turn into its own
    failure (a connection never made, `aiohttp.ClientConnectorError`, is never resent).
    `max_bytes`: a body over it raises `BodyTooLarge` unread (never sent again)."""
    for attempt in (1, 2):
        try:
            async with session.request(method, url, **options) as r:
                return r.status, r.headers, await _read(r, max_bytes)
        except aiohttp.ClientConnectorError:
            raise
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
            if attempt == 2 or method not in SAFE_METHODS:
                raise
    raise AssertionError("unreachable")


def exact_url(text: str) -> URL:
    """Send the target as written (`%2F`, `//` and all) when it is already a valid URL, so both
    sides see the same bytes; quote it only when it is not (spaces, non-ASCII)."""
    if text.isascii() and " " not in text:
        return URL(text, encoded=True)
    return URL(text)


class UrlTarget:
    """A running service at `base` (`http://127.0.0.1:7777`)."""

    def __init__(self, base: str, timeout_s: float = DEFAULT_TIMEOUT_S, side: Side | None = None) -> None:
        self.base = base.rstrip("/")
        self.side = side
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def send(self, request: Request) -> Response:
        if self._session is None:
            self._session = without_silent_retry(aiohttp.ClientSession(timeout=self._timeout, auto_decompress=True))
        url = exact_url(self.base + request.target)
        try:
            status, headers, body = await request_once_more_if_safe(
                self._session,
                request.method,
                url,
                data=request.body or None,
                headers=dict(request.headers),
                allow_redirects=False,
            )
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            return Response.failed(f"{type(exc).__name__}: {exc}", self.side)
        return Response(status, _headers(headers.items()), body, self.side)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class AiohttpAppTarget:
    """An aiohttp application, started (with its startup and cleanup hooks) on first use."""

    def __init__(self, app: web.Application, side: Side | None = None) -> None:
        self.app = app
        self.side = side
        self._server: Any = None
        self._url: UrlTarget | None = None

    async def send(self, request: Request) -> Response:
        if self._url is None:
            from aiohttp.test_utils import TestServer

            self._server = TestServer(self.app)
            await self._server.start_server()
            self._url = UrlTarget(str(self._server.make_url("")), side=self.side)
        return await self._url.send(request)

    async def close(self) -> None:
        if self._url is not None:
            await self._url.close()
        if self._server is not None:
            await self._server.close()


class AsgiTarget:
    """An ASGI application (FastAPI, Starlette, agno's AgentOS app), called in process."""

    def __init__(self, app: Any, side: Side | None = None) -> None:
        try:
            import httpx
        except ImportError as exc:  # pragma: no cover - depends on the user's environment
            raise RuntimeError("comparing ASGI apps needs httpx (pip install httpx)") from exc
        self.side = side
        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")

    async def send(self, request: Request) -> Response:
        r = await self._client.request(
            request.method, request.target, content=request.body or None, headers=dict(request.headers)
        )
        return Response(r.status_code, _headers(r.headers.multi_items()), r.content, self.side)

    async def close(self) -> None:
        await self._client.aclose()


def target_for(side: Any, label: Side | None = None) -> Target:
    """A target from what a user passes: a URL string, an aiohttp app, an ASGI app, or an
    object that already has `send` and `close`."""
    if isinstance(side, str):
        if urlsplit(side).scheme not in ("http", "https"):
            raise ValueError(f"not an http(s) base URL: {side!r}")
        return UrlTarget(side, side=label)
    if isinstance(side, web.Application):
        return AiohttpAppTarget(side, label)
    if hasattr(side, "send") and hasattr(side, "close"):
        return side
    if callable(side):
        return AsgiTarget(side, label)
    raise TypeError(f"cannot send requests to {side!r}: give a base URL, an aiohttp app or an ASGI app")
