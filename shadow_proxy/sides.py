"""The two sides as the gateway calls them, all over aiohttp's public client API:

- `HttpSide`: a side at a base URL (legacy always; native when `native.url` is set);
- `InProcessNative`: the native service's aiohttp app run inside the gateway's event loop, on
  a `web.AppRunner` + `web.UnixSite` bound to a socket file in a private directory (mode 0700),
  and called with the same `HttpSide` code over an `aiohttp.UnixConnector`. No TCP hop, no
  port, and nothing of aiohttp's internals: the native app's router, middlewares (observe,
  cors, authenticate) and handlers run exactly as in `agentos-session serve`.

Each call gives an `Answer`: the `Response` (with `error` set when there was no HTTP answer),
its latency, and whether the request may have reached the side, which decides if a write may be
retried elsewhere. Background work (mirroring, read-back) sends plain `Request` values: nothing
of the client's connection is kept after its request ended.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import aiohttp
from aiohttp import web

from agentos_session.routing import SAFE_METHODS
from comparator import Request, Response
from comparator import Side as SideName
from comparator.fetch import BodyTooLarge, exact_url, request_once_more_if_safe, without_silent_retry
from session_service.middleware import TRUST_UNIX_PEER
from session_service.serving import HEAD_LIMIT

from .metrics import GatewayMetrics, code_class


@dataclass(frozen=True)
class Answer:
    response: Response
    elapsed_s: float
    reached: bool  # False only when the request provably never reached the side
    timed_out: bool = False
    too_large: bool = False  # the answer's body was over the caller's limit (not read)

    @property
    def drop_reason(self) -> str:
        """Why a copy without an answer is dropped (`shadow_mirror_skipped_total{reason}`)."""
        return "timeout" if self.timed_out else "body_too_large" if self.too_large else "shadow_error"

    @property
    def failed(self) -> bool:
        """No answer, or a 5xx: what the fallback to legacy covers."""
        return self.response.error is not None or self.response.status >= 500


class Side(Protocol):
    """What the gateway needs of a side: a name, a lifetime, and one call."""

    name: SideName

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def send(self, request: Request, timeout_s: float, max_body_bytes: int | None = None) -> Answer: ...


ConnectorFactory = Callable[..., aiohttp.BaseConnector]


class HttpSide:
    """A side at a base URL. Reads go through a pool of kept-alive connections; writes always
    get a fresh connection, because a pooled one may have been closed by the server without
    notice (uvicorn does, after an unhandled error), and a write sent on it cannot be safely
    sent again, while a read can. `connector` makes the connections (TCP unless told)."""

    def __init__(
        self,
        name: SideName,
        base_url: str,
        max_connections: int,
        connector: ConnectorFactory = aiohttp.TCPConnector,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self._max_connections = max_connections
        self._connector = connector
        self._pooled: aiohttp.ClientSession | None = None
        self._fresh: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._pooled = _session(self._connector(limit=self._max_connections))
        self._fresh = _session(self._connector(limit=self._max_connections, force_close=True))

    async def close(self) -> None:
        for session in (self._pooled, self._fresh):
            if session is not None:
                await session.close()
        self._pooled = self._fresh = None

    async def send(self, request: Request, timeout_s: float, max_body_bytes: int | None = None) -> Answer:
        session = self._pooled if request.method in SAFE_METHODS else self._fresh
        assert session is not None, "start() first"
        started = time.perf_counter()
        try:
            status, headers, body = await request_once_more_if_safe(
                session,
                request.method,
                exact_url(self.base_url + request.target),
                max_body_bytes,
                headers=dict(request.headers),
                data=request.body or None,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=timeout_s),
            )
        except aiohttp.ClientConnectorError as exc:  # the connection was never made
            return _failed(self.name, exc, started, reached=False)
        except TimeoutError as exc:
            return _failed(self.name, exc, started, reached=True, timed_out=True)
        except BodyTooLarge as exc:
            return _failed(self.name, exc, started, reached=True, too_large=True)
        except (aiohttp.ClientError, OSError) as exc:  # it may have reached the side
            return _failed(self.name, exc, started, reached=True)
        answer = Response(status, {k: v for k, v in headers.items()}, body, self.name)
        return Answer(answer, time.perf_counter() - started, True)


def _session(connector: aiohttp.BaseConnector) -> aiohttp.ClientSession:
    """A proxy's client session: bodies passed on as they came (no decompression), and no
    cookie jar, so a `Set-Cookie` one client's request got is never sent with another's (and
    no cookie parsing on the hot path)."""
    session = aiohttp.ClientSession(connector=connector, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar())
    return without_silent_retry(session)


class InProcessNative:
    """The native service's aiohttp `app`, served in this process on a Unix socket that only
    this process can reach, and called over it like any HTTP side.

    The socket lives in a fresh `tempfile.mkdtemp` directory (mode 0700: no other user can
    connect), removed on `close()`. The app is told (`TRUST_UNIX_PEER`) that a peer on a Unix
    socket is the gateway, so it believes the `X-Forwarded-For` hop the gateway appends and logs
    and counts the client's address, as it would behind any trusted proxy; on TCP nothing
    changes. Its access lines stay at the level it was built with (DEBUG in the gateway)."""

    name: SideName = "native"
    SOCKET = "native.sock"

    def __init__(self, app: web.Application, max_connections: int = 100) -> None:
        self.app = app
        self.app[TRUST_UNIX_PEER] = True
        self._max_connections = max_connections
        self._dir: str | None = None
        self._runner: web.AppRunner | None = None
        self._client: HttpSide | None = None

    @property
    def socket_path(self) -> str:
        assert self._dir is not None, "start() first"
        return os.path.join(self._dir, self.SOCKET)

    async def start(self) -> None:
        self._dir = tempfile.mkdtemp(prefix="agentos-native-")  # created 0700
        # aiohttp's own access logger off: the app's `observe` middleware writes its lines.
        self._runner = web.AppRunner(
            self.app, access_log=None, handle_signals=False, max_line_size=HEAD_LIMIT, max_field_size=HEAD_LIMIT
        )
        await self._runner.setup()  # the app's startup and cleanup_ctx: its database pools
        await web.UnixSite(self._runner, self.socket_path).start()
        path = self.socket_path

        def connector(*, limit: int, force_close: bool = False) -> aiohttp.BaseConnector:
            return aiohttp.UnixConnector(path, limit=limit, force_close=force_close)

        # The host is a name only (the socket is the address): the app sees `Host: native.local`.
        self._client = HttpSide(self.name, "http://native.local", self._max_connections, connector)
        await self._client.start()

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._dir is not None:
            with contextlib.suppress(OSError):
                shutil.rmtree(self._dir)
            self._dir = None

    async def send(self, request: Request, timeout_s: float, max_body_bytes: int | None = None) -> Answer:
        assert self._client is not None, "start() first"
        return await self._client.send(request, timeout_s, max_body_bytes)


def _failed(
    side: SideName,
    exc: BaseException,
    started: float,
    *,
    reached: bool,
    timed_out: bool = False,
    too_large: bool = False,
) -> Answer:
    detail = f"{type(exc).__name__}: {exc}".rstrip(": ")
    return Answer(Response.failed(detail, side), time.perf_counter() - started, reached, timed_out, too_large)


class Sides:
    """The gateway's two sides by name, and the one way to call them: every call, whether for a
    client, a mirrored copy, a recheck or a read-back, is counted in `shadow_requests_total` and
    `shadow_upstream_duration_seconds` under its route, stage and side."""

    def __init__(self, legacy: Side | None, native: Side, metrics: GatewayMetrics) -> None:
        self.legacy = legacy
        self.native = native
        self.metrics = metrics

    def __getitem__(self, name: str) -> Side:
        if name == "legacy":
            assert self.legacy is not None, "no legacy side is configured"
            return self.legacy
        return self.native

    async def call(
        self, side: str, request: Request, route: str, stage: str, timeout_s: float, max_body_bytes: int | None = None
    ) -> Answer:
        """`max_body_bytes`: for background calls, an answer over it is not read (`too_large`)."""
        answer = await self[side].send(request, timeout_s, max_body_bytes)
        self.metrics.requests.labels(route, stage, side, code_class(answer.response.status)).inc()
        self.metrics.upstream_duration.labels(route, side).observe(answer.elapsed_s)
        return answer

    async def start(self) -> None:
        await self.native.start()
        if self.legacy is not None:
            await self.legacy.start()

    async def close(self) -> None:
        if self.legacy is not None:
            await self.legacy.close()
        await self.native.close()
