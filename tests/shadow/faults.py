"""A fault injector in front of the real agno AgentOS: it forwards every request to it and can
hold the answer, replace it with garbage, or alter the JSON, to play a slow, broken or
diverging legacy side. It also keeps the headers it received. It is a proxy, not a stand-in:
every answer it gives starts as the real AgentOS's answer."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
from aiohttp import web


class FaultyLegacy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.mode = "pass"  # pass | hold | garbage | mutate
        self.release = asyncio.Event()
        self.received: list[dict[str, str]] = []
        self.held = 0
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

    async def _handle(self, request: web.Request) -> web.Response:
        self.received.append(dict(request.headers))
        if self.mode == "hold":
            self.held += 1
            await self.release.wait()
        if self.mode == "garbage":
            return web.Response(body=b"\x00\xffnot json <html>", content_type="text/html")
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        async with self._session.request(
            request.method, self.upstream + request.raw_path, headers=headers, data=await request.read()
        ) as r:
            body = await r.read()
            status = r.status
            # Every header of the real answer, as a faithful proxy passes them on.
            kept = {k: v for k, v in r.headers.items() if k.lower() not in _NOT_FORWARDED}
        if self.mode == "mutate" and kept.get("Content-Type", "").startswith("application/json"):
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
