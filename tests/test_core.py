"""The core (session_service/core.py) on its own: the request value parses a target as aiohttp's
HTTP parser does, holds nothing but plain data, and the hot path's shortcuts (no access record
when its level is off, cached metric children, counter-made request ids) keep what they stand
for. The app runs against the real test Postgres; aiohttp's parser is the real one, over a
real socket."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import payload, web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDictProxy

from session_service import core, middleware
from session_service.app import create_app
from session_service.config import load_settings
from session_service.metrics import ServiceMetrics

HEX32 = re.compile(r"^[0-9a-f]{32}$")

# Request targets where two parsers could disagree.
TARGETS = [
    "/sessions",
    "/sessions?limit=1&limit=2",
    "/sessions?a=1;b=2&c",
    "/sessions?&&=&=x&flag&a=",
    "/sessions?x=%FF%FE&y=%E2%82&z=%ED%A0%80",
    "/sessions?q=a+b%20c%2Bd%26e%3Df",
    "/sessions/a%2Fb/runs",
    "/sessions/%FF%FE",
    "/sessions/line%0Abreak?x=%0A",
    "/sessions/s-1#frag",
    "/sessions/s-1?x=1#frag?y=2",
    "/sessions/s-1#frag#more",
    "/sessions/s-1#frag?x=1",
    "//sessions//x/",
    "/sessions/%73-1/./../x",
    "/a/%25/%2525",
    "/sessions?" + "k=v&" * 500,
]


@pytest.fixture
async def echo() -> AsyncIterator[TestServer]:
    """An aiohttp server answering what its parser made of each request target."""

    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"path": request.path, "query": list(request.query.items())})

    app = web.Application()
    app.router.add_route("*", "/{tail:(?s:.*)}", handler)
    server = TestServer(app)
    await server.start_server()
    try:
        yield server
    finally:
        await server.close()


async def _raw_get(server: TestServer, target: str) -> dict[str, Any]:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        raw = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), (target, head[:80])
    return dict(json.loads(body))


async def test_a_target_is_parsed_as_aiohttps_http_parser_parses_it(echo: TestServer) -> None:
    for target in TARGETS:
        seen = await _raw_get(echo, target)
        url = core.parse_target(target)
        assert (url.path, [list(item) for item in url.query.items()]) == (seen["path"], seen["query"]), target


def _value(app: web.Application, target: str = "/sessions/s-agent-1", **kwargs: Any) -> core.CoreRequest:
    return core.request_value(
        app, "GET", target, {"X-Forwarded-For": "203.0.113.9"}, b"", peer="10.0.0.1", arrived=0.0, **kwargs
    )


def test_the_open_paths_are_the_operational_routes() -> None:
    """Auth skips exactly the paths the core serves itself (one list would be two otherwise)."""
    assert frozenset(core.OPERATIONAL) == middleware.OPEN_PATHS


def test_the_value_is_frozen_plain_data() -> None:
    """Nothing of a connection: no transport, protocol, writer or task can be in a value."""
    value = _value(web.Application())
    with pytest.raises(dataclasses.FrozenInstanceError):
        value.body = b"x"  # type: ignore[misc]  # the point: it is frozen
    names = [f.name for f in dataclasses.fields(value)]
    assert names == [
        "app",
        "method",
        "raw_path",
        "path",
        "query",
        "headers",
        "body",
        "peer",
        "arrived",
        "from_gateway",
        "body_refused",
        "identity",
    ]
    assert isinstance(value.headers, CIMultiDictProxy) and value.headers["x-forwarded-for"] == "203.0.113.9"


def test_only_the_gateways_value_is_believed_about_the_client() -> None:
    app = web.Application()
    assert middleware.peer_of(_value(app)) == "10.0.0.1"
    assert middleware.peer_of(_value(app, from_gateway=True)) == "203.0.113.9"


@pytest.fixture
async def started(pg_dsn: str, seeded: None) -> AsyncIterator[web.Application]:
    """The native app, its pools open, without any server: the core's state."""
    app = create_app(
        load_settings({"AGNO_PG_DSN": pg_dsn, "AGNO_DEFAULT_DB_ID": "main-db"}), access_log_level=logging.DEBUG
    )
    app.freeze()
    await app.startup()
    try:
        yield app
    finally:
        await app.cleanup()


async def test_the_access_record_is_built_only_when_its_level_is_on(
    started: web.Application, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str | None] = []

    def counting_client_ip(peer: str | None, *rest: Any) -> str | None:
        calls.append(peer)
        return peer

    monkeypatch.setattr(middleware, "client_ip", counting_client_ip)
    loop = asyncio.get_running_loop()
    caplog.set_level(logging.INFO, logger="session_service.access")  # the app writes at DEBUG
    value = dataclasses.replace(_value(started), arrived=loop.time())
    assert (await core.handle(value)).status == 200
    assert calls == [] and not [r for r in caplog.records if r.name == "session_service.access"]
    caplog.set_level(logging.DEBUG, logger="session_service.access")
    assert (await core.handle(dataclasses.replace(value, arrived=loop.time()))).status == 200
    assert calls == ["10.0.0.1"]
    [line] = [r for r in caplog.records if r.name == "session_service.access"]
    assert line.fields["route"] == "/sessions/{session_id}"  # type: ignore[attr-defined]  # set by observe


async def test_a_core_answer_counts_in_the_apps_metrics(started: web.Application) -> None:
    from session_service.appkeys import METRICS

    loop = asyncio.get_running_loop()
    for _ in range(3):
        await core.handle(dataclasses.replace(_value(started), arrived=loop.time()))
    registry = started[METRICS].registry
    labels = {"method": "GET", "route": "/sessions/{session_id}"}
    assert registry.get_sample_value("agno_session_requests_total", {**labels, "status": "200"}) == 3
    assert registry.get_sample_value("agno_session_request_duration_seconds_count", labels) == 3


def test_cached_metric_children_count_like_fresh_ones() -> None:
    metrics = ServiceMetrics()
    for status in (200, 200, 404):
        metrics.observe_request("GET", "/sessions", status, 0.002)
    get = metrics.registry.get_sample_value
    assert get("agno_session_requests_total", {"method": "GET", "route": "/sessions", "status": "200"}) == 2
    assert get("agno_session_requests_total", {"method": "GET", "route": "/sessions", "status": "404"}) == 1
    labels = {"method": "GET", "route": "/sessions"}
    assert get("agno_session_request_duration_seconds_count", labels) == 3
    assert get("agno_session_request_duration_seconds_bucket", {**labels, "le": "0.0025"}) == 3


def test_made_up_request_ids_are_unique_32_hex_digits() -> None:
    ids = [middleware.request_id_of(None) for _ in range(20000)]
    assert len(set(ids)) == len(ids)
    assert all(HEX32.match(i) for i in ids)
    assert middleware.request_id_of("kept-1") == "kept-1"


def test_response_parts_are_what_an_http_client_reads() -> None:
    answer = web.Response(body=b'{"a":1}', content_type="application/json")
    status, headers, body = core.response_parts(answer, "GET")
    assert (status, headers["Content-Type"], headers["Content-Length"], body) == (
        200,
        "application/json",
        "7",
        b'{"a":1}',
    )
    assert core.response_parts(answer, "HEAD")[1:] == ({"Content-Type": "application/json", "Content-Length": "7"}, b"")
    assert core.response_parts(web.Response(status=204, headers={"Content-Type": "application/json"}), "DELETE") == (
        204,
        {"Content-Type": "application/json"},
        b"",
    )
    streamed = web.Response(body=payload.StringPayload("x"))
    with pytest.raises(TypeError, match="StringPayload"):  # never a body lost without a word
        core.response_parts(streamed, "GET")
