"""A fault injector in front of a real side (the agno AgentOS, or a native service): it forwards
every request to it and can hold the answer (`hold`: until `release` is set, i.e. stalled past
any timeout), reset the connection (`reset`: the socket is closed with no answer), answer
with a status of its own (`status`: e.g. 503, as a balancer in front of a dead side), replace the
answer with garbage (`garbage`) or with a huge body (`huge`: `huge_bytes` of JSON-looking
bytes), or alter the JSON (`mutate`), to play a slow, broken or diverging side. Only the
requests the gateway forwards (they carry its X-Forwarded-For) meet the fault and its own probes
of the side (readiness, /config) pass, unless `fault_probes` is set (a side that is away for
the gateway's probes too). It keeps the headers it received, and counts the held requests (`held`) and those still held (`pending`).
It is a proxy, not a stand-in: every answer it passes on starts as the real side's answer."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
from aiohttp import web


class FaultyLegacy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.mode = "pass"  # pass | hold | reset | garbage | huge | mutate | status
        self.status = 503  # mode `status`: this status with a JSON `detail`, the side not asked
        self.release = asyncio.Event()
        self.received: list[dict[str, str]] = []
        self.held = 0  # requests that were held
        self.pending = 0  # requests held right now (not yet released)
        self.huge_bytes = 8 * 1024 * 1024
        self.huge_chunked = False  # True: the huge body is sent without a Content-Length
        # False: the gateway's own probes (no X-Forwarded-For) pass in every mode, so the counts
        # above are the client requests and mirrored copies only. True: they meet the fault too.
        self.fault_probes = False
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.url = ""

    async def __aenter__(self) -> FaultyLegacy:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.release.set()
        assert self._session is not None and self._runner is not None
        await self._session.close()
        await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.received.append(dict(request.headers))
        # Only what the gateway forwards (client requests, copies, read-backs: they carry the
        # X-Forwarded-For it appends) meets the fault; its own probes of the side pass.
        forwarded = "X-Forwarded-For" in request.headers
        mode = self.mode if forwarded or self.fault_probes else "pass"
        if mode == "hold":
            self.held += 1
            self.pending += 1
            try:
                await self.release.wait()
            finally:
                self.pending -= 1
        if mode == "reset":
            # No answer at all: the connection is closed under the client (a crashed side, a
            # load balancer's RST). aiohttp then has nothing to write.
            assert request.transport is not None
            request.transport.abort()
            return web.Response(status=500)  # never written: the transport is gone
        if mode == "status":
            return web.json_response({"detail": "unavailable (fault)"}, status=self.status)
        if mode == "garbage":
            return web.Response(body=b"\x00\xffnot json <html>", content_type="text/html")
        if mode == "huge":
            # A body far over any sane answer, streamed so this proxy's own memory stays small.
            huge = web.StreamResponse(headers={"Content-Type": "application/json"})
            if not self.huge_chunked:
                huge.content_length = self.huge_bytes
            await huge.prepare(request)
            chunk = b" " * 65536
            for _ in range(self.huge_bytes // len(chunk)):
                await huge.write(chunk)
            await huge.write(b" " * (self.huge_bytes % len(chunk)))
            await huge.write_eof()
            return huge
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        async with self._session.request(
            request.method, self.upstream + request.raw_path, headers=headers, data=await request.read()
        ) as r:
            body = await r.read()
            status = r.status
            # Every header of the real answer, as a faithful proxy passes them on.
            kept = {k: v for k, v in r.headers.items() if k.lower() not in _NOT_FORWARDED}
        if mode == "mutate" and kept.get("Content-Type", "").startswith("application/json"):
            body = json.dumps(_mutate(json.loads(body)), separators=(",", ":")).encode()
        return web.Response(status=status, body=body, headers=kept)


_NOT_FORWARDED = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive", "date", "server"})


def _mutate(value: Any) -> Any:
    """A diverging legacy: every `session_name` comes back changed."""
    if isinstance(value, dict):
        return {k: ("(changed) " + str(v) if k == "session_name" else _mutate(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_mutate(v) for v in value]
    return value
