"""The two sides as the gateway calls them, on public APIs only:

- `HttpSide`: a side at a base URL over aiohttp's client (legacy always; native when
  `native.url` is set);
- `InProcessNative`: the native service's core (session_service/core.py) called in the
  gateway's event loop with a request value, and its `web.Response` read back as a `Response`:
  the same stages (observe, cors, authenticate) and views as `agentos-session serve`, without a
  socket or a second HTTP round of serialising and parsing.

Each call gives an `Answer`: the `Response` (with `error` set when there was no HTTP answer),
its latency, and whether the request may have reached the side, which decides if a write may be
retried elsewhere. Background work (mirroring, read-back) sends plain `Request` values: nothing
of the client's connection is kept after its request ended.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Protocol

import aiohttp
from aiohttp import web

from agentos_session.routing import SAFE_METHODS
from comparator import Request, Response
from comparator import Side as SideName
from comparator.fetch import BodyTooLarge, exact_url, request_once_more_if_safe, without_silent_retry
from session_service import core
from session_service.appkeys import SETTINGS

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


class HttpSide:
    """A side at a base URL. Reads go through a pool of kept-alive connections; writes always
    get a fresh connection, because a pooled one may have been closed by the server without
    notice (uvicorn does, after an unhandled error), and a write sent on it cannot be safely
    sent again, while a read can."""

    def __init__(self, name: SideName, base_url: str, max_connections: int) -> None:
        self.name = name
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


NAME_ONLY = "http://native.local"  # a base for parsing a target as a client would send it


class InProcessNative:
    """The native service's core (session_service/core.py), called in this process with a
    request value: the same stages (observe, cors, authenticate) and views as
    `agentos-session serve`, without a socket, a second HTTP serialisation or a parse.

    `app` is the native service's aiohttp app, used only as the core's state (settings,
    metrics, databases); `start()` and `close()` open and close its databases through its
    public `startup()` / `cleanup()`. The value is marked `from_gateway`, so the core believes
    the `X-Forwarded-For` hop the gateway appends and logs and counts the client's address, as
    behind any trusted proxy; its access lines stay at the level it was built with (DEBUG in
    the gateway). A write runs as its own task, shielded from the caller's timeout: as over
    HTTP, a write the gateway stopped waiting for is still finished by the service (within its
    own request timeout), never cut off halfway. A read (a safe method) runs in the caller's
    task and is cancelled at the timeout: it has no effect to finish, and a task per read
    cost about 90 µs of CPU (two more turns of the event loop). At most `max_connections`
    calls run at once, as a connection pool would allow."""

    name: SideName = "native"

    def __init__(self, app: web.Application, max_connections: int = 100) -> None:
        self.app = app
        self._slots = asyncio.Semaphore(max_connections)
        self._running: set[asyncio.Task[web.Response]] = set()
        self._started = False

    async def start(self) -> None:
        self.app.freeze()  # what a runner does first; the signals must be frozen to be sent
        await self.app.startup()  # the app's cleanup_ctx: its database pools, its readiness loop
        self._started = True

    async def close(self) -> None:
        if not self._started:
            return
        self._started = False
        if self._running:  # calls the gateway stopped waiting for end within their own deadline
            _, pending = await asyncio.wait(set(self._running), timeout=self.app[SETTINGS].request_timeout_s + 1)
            for task in pending:
                task.cancel()
        await self.app.cleanup()

    async def send(self, request: Request, timeout_s: float, max_body_bytes: int | None = None) -> Answer:
        assert self._started, "start() first"
        started = time.perf_counter()
        try:
            value = self._value(request)
        except ValueError as exc:  # a target no HTTP parser would take: it never reached the core
            return _failed(self.name, exc, started, reached=False)
        try:
            async with asyncio.timeout(timeout_s):
                if request.method in SAFE_METHODS:
                    # A read has nothing to finish once nobody waits for it: run it in the
                    # caller's task (no task and no extra turns of the event loop per call).
                    async with self._slots:
                        response = await core.handle(value)
                else:
                    await self._slots.acquire()
                    task = asyncio.ensure_future(core.handle(value))
                    self._running.add(task)
                    task.add_done_callback(self._finished)
                    response = await asyncio.shield(task)
            status, headers, body = core.response_parts(response, request.method)
        except TimeoutError as exc:
            return _failed(self.name, exc, started, reached=True, timed_out=True)
        except Exception as exc:  # the core answers every failure itself: this is a bug
            return _failed(self.name, exc, started, reached=True)
        if max_body_bytes is not None and len(body) > max_body_bytes:
            too_large = BodyTooLarge(f"body of {len(body)} bytes is over the limit of {max_body_bytes}")
            return _failed(self.name, too_large, started, reached=True, too_large=True)
        return Answer(Response(status, headers, body, self.name), time.perf_counter() - started, True)

    def _value(self, request: Request) -> core.CoreRequest:
        target = request.target
        if not target.isascii() or " " in target or "#" in target:
            # What `HttpSide` would put on the request line: no fragment, odd characters quoted.
            target = exact_url(NAME_ONLY + target).raw_path_qs
        return core.request_value(
            self.app,
            request.method,
            target,
            request.headers,
            request.body,
            peer=None,
            arrived=asyncio.get_running_loop().time(),
            from_gateway=True,
        )

    def _finished(self, task: asyncio.Task[web.Response]) -> None:
        self._running.discard(task)
        self._slots.release()
        if not task.cancelled():
            task.exception()  # retrieved: one the caller stopped waiting for is not "never retrieved"


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
