"""In-process tests of the operational layer (session_service.middleware and app.py): request ids,
the access log, the client IP, crash recovery, timeout, body limit, auth, /healthz, /metrics and
Starlette-like routing. The app runs in-process (pytest-aiohttp) against the real test Postgres.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from agentos_session.logs import JsonLogFormatter
from session_service import views
from session_service.app import create_app
from session_service.appkeys import DATABASES
from session_service.config import load_settings
from session_service.middleware import client_ip

DB_ID = "main-db"
SEEDED_SESSION = "s-agent-1"  # harness/seed.py
CLOSED_PORT_DSN = "postgresql://postgres@127.0.0.1:1/x"
HEX32 = re.compile(r"^[0-9a-f]{32}$")

MakeClient = Callable[..., Awaitable[TestClient]]


@pytest.fixture(scope="module")
def base_env(pg_dsn: str, seeded: None) -> dict[str, str]:
    # `seeded`: agno creates the tables before this app could (its `ensure_tables`).
    return {"AGNO_PG_DSN": pg_dsn, "AGNO_DEFAULT_DB_ID": DB_ID, "AGNO_POOL_MIN_SIZE": "1", "AGNO_POOL_MAX_SIZE": "4"}


@pytest.fixture
def make_client(aiohttp_client: Any, base_env: dict[str, str]) -> MakeClient:
    """`await make_client(env_extra={...}, **settings_replacements)` -> a client of a fresh app."""

    async def make(env_extra: dict[str, str] | None = None, **replace: Any) -> TestClient:
        settings = load_settings({**base_env, **(env_extra or {})})
        if replace:
            settings = dataclasses.replace(settings, **replace)
        return await aiohttp_client(create_app(settings))

    return make


@pytest.fixture
async def client(make_client: MakeClient) -> TestClient:
    return await make_client()


def access_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The access lines as the service writes them (agentos_session.logs' JSON formatter)."""
    formatter = JsonLogFormatter()
    return [json.loads(formatter.format(r)) for r in caplog.records if r.name == "session_service.access"]


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """{sorted labels: value} of the samples called `name` in a Prometheus text exposition."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


async def metrics_text(client: TestClient) -> str:
    resp = await client.get("/metrics")
    assert resp.status == 200
    return await resp.text()


# --------------------------------------------------------------------------------------------
# request id
# --------------------------------------------------------------------------------------------


async def test_request_id_is_kept_when_valid(client: TestClient) -> None:
    rid = "req-2024.01:abc_DEF"
    resp = await client.get("/sessions", headers={"X-Request-ID": rid})
    assert resp.status == 200
    assert resp.headers["X-Request-ID"] == rid


async def test_request_id_is_generated_when_absent(client: TestClient) -> None:
    first = (await client.get("/sessions")).headers["X-Request-ID"]
    second = (await client.get("/sessions")).headers["X-Request-ID"]
    assert HEX32.match(first) and HEX32.match(second)
    assert first != second


@pytest.mark.parametrize("bad", ["has space", "x" * 129, "semi;colon", 'quote"d', "new%0Aline", "ünï"])
async def test_request_id_is_replaced_when_invalid(client: TestClient, bad: str) -> None:
    resp = await client.get("/sessions", headers={"X-Request-ID": bad})
    assert resp.status == 200
    assert HEX32.match(resp.headers["X-Request-ID"])


async def test_request_id_of_128_chars_is_kept(client: TestClient) -> None:
    rid = "a" * 128
    assert (await client.get("/nope", headers={"X-Request-ID": rid})).headers["X-Request-ID"] == rid


async def test_request_id_on_error_answers(make_client: MakeClient) -> None:
    client = await make_client(env_extra={"OS_SECURITY_KEY": "k3y"})
    for path, status in (("/sessions", 401), ("/healthz", 200)):
        resp = await client.get(path, headers={"X-Request-ID": f"rid-{status}"})
        assert resp.status == status
        assert resp.headers["X-Request-ID"] == f"rid-{status}"
    resp = await client.put("/sessions", headers={"Authorization": "k3y", "X-Request-ID": "rid-405"})
    assert (resp.status, resp.headers["X-Request-ID"]) == (405, "rid-405")


# --------------------------------------------------------------------------------------------
# access log
# --------------------------------------------------------------------------------------------


async def test_access_log_line(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="session_service.access"):
        resp = await client.get(f"/sessions/{SEEDED_SESSION}", headers={"X-Request-ID": "log-line-1"})
        assert resp.status == 200
    lines = [line for line in access_lines(caplog) if line["request_id"] == "log-line-1"]
    assert len(lines) == 1
    line = lines[0]
    assert set(line) == {
        "ts",
        "level",
        "logger",
        "msg",
        "method",
        "route",
        "status",
        "duration_ms",
        "request_id",
        "client_ip",
    }
    assert (line["msg"], line["level"], line["logger"]) == ("request", "info", "session_service.access")
    assert line["method"] == "GET"
    assert line["route"] == "/sessions/{session_id}"  # the template, not the concrete path
    assert line["status"] == 200
    assert isinstance(line["duration_ms"], float) and 0 < line["duration_ms"] < 10_000
    assert line["client_ip"] == "127.0.0.1"
    # One JSON object per line, no concrete id anywhere.
    record = next(
        r for r in caplog.records if r.name == "session_service.access" and r.fields["request_id"] == "log-line-1"
    )
    text = JsonLogFormatter().format(record)
    assert "\n" not in text and SEEDED_SESSION not in text


async def test_access_log_for_unmatched_and_rejected(make_client: MakeClient, caplog: pytest.LogCaptureFixture) -> None:
    client = await make_client(env_extra={"OS_SECURITY_KEY": "k3y"})
    with caplog.at_level(logging.INFO, logger="session_service.access"):
        await client.get("/no/such/path", headers={"Authorization": "k3y", "X-Request-ID": "u-1"})
        await client.delete("/sessions", headers={"X-Request-ID": "u-2"})
        await client.get("/healthz", headers={"X-Request-ID": "u-3"})
    by_id = {line["request_id"]: line for line in access_lines(caplog)}
    assert (by_id["u-1"]["route"], by_id["u-1"]["status"]) == ("unmatched", 404)
    assert (by_id["u-2"]["method"], by_id["u-2"]["status"]) == ("DELETE", 401)
    assert (by_id["u-3"]["route"], by_id["u-3"]["status"]) == ("/healthz", 200)


async def test_access_log_client_ip_through_trusted_proxy(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    client = await make_client(env_extra={"AGNO_TRUSTED_PROXIES": "127.0.0.0/8,10.0.0.0/8"})
    with caplog.at_level(logging.INFO, logger="session_service.access"):
        await client.get(
            "/sessions", headers={"X-Request-ID": "p-1", "X-Forwarded-For": "198.51.100.1, 203.0.113.9, 10.1.2.3"}
        )
        await client.get("/sessions", headers={"X-Request-ID": "p-2", "X-Real-IP": "192.0.2.44"})
    by_id = {line["request_id"]: line for line in access_lines(caplog)}
    assert by_id["p-1"]["client_ip"] == "203.0.113.9"
    assert by_id["p-2"]["client_ip"] == "192.0.2.44"


async def test_access_log_ignores_forwarding_headers_without_trusted_proxies(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="session_service.access"):
        await client.get(
            "/sessions", headers={"X-Request-ID": "np-1", "X-Forwarded-For": "203.0.113.9", "X-Real-IP": "192.0.2.1"}
        )
    (line,) = [line for line in access_lines(caplog) if line["request_id"] == "np-1"]
    assert line["client_ip"] == "127.0.0.1"


# --------------------------------------------------------------------------------------------
# client_ip (pure)
# --------------------------------------------------------------------------------------------

TRUSTED = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128"))


def test_client_ip_untrusted_peer_ignores_headers() -> None:
    assert client_ip("203.0.113.5", "1.2.3.4", "5.6.7.8", TRUSTED) == "203.0.113.5"


def test_client_ip_without_trusted_proxies_is_the_peer() -> None:
    assert client_ip("10.0.0.1", "1.2.3.4", "5.6.7.8", ()) == "10.0.0.1"


def test_client_ip_trusted_proxy_uses_rightmost_untrusted_hop() -> None:
    # The client can prepend anything; only hops appended by trusted proxies are believed.
    assert client_ip("10.0.0.1", "6.6.6.6, 1.1.1.1, 2.2.2.2, 10.0.0.5", None, TRUSTED) == "2.2.2.2"
    assert client_ip("10.0.0.1", "2.2.2.2", "9.9.9.9", TRUSTED) == "2.2.2.2"  # XFF before X-Real-IP


def test_client_ip_all_hops_trusted_gives_leftmost() -> None:
    assert client_ip("10.0.0.1", "10.0.0.7, 10.0.0.8", None, TRUSTED) == "10.0.0.7"


def test_client_ip_ipv6() -> None:
    assert client_ip("::1", "2001:db8::7, ::1", None, TRUSTED) == "2001:db8::7"
    # An IPv6 address whose low bits look like 10.x is not in 10.0.0.0/8.
    assert client_ip("2001:db8::a00:1", "1.2.3.4", None, TRUSTED) == "2001:db8::a00:1"


def test_client_ip_real_ip_fallback() -> None:
    assert client_ip("10.0.0.1", None, "9.9.9.9", TRUSTED) == "9.9.9.9"
    assert client_ip("10.0.0.1", " , ,", " 9.9.9.9 ", TRUSTED) == "9.9.9.9"  # empty XFF hops
    assert client_ip("10.0.0.1", None, "  ", TRUSTED) == "10.0.0.1"
    assert client_ip("10.0.0.1", "", None, TRUSTED) == "10.0.0.1"


@pytest.mark.parametrize(
    "peer, xff, real_ip, expected",
    [
        ("not-an-ip", "1.2.3.4", "5.6.7.8", "not-an-ip"),  # a garbage peer is never trusted
        (None, "1.2.3.4", None, None),  # e.g. a Unix socket
        ("", "1.2.3.4", None, ""),
        ("10.0.0.1", "garbage, 203.0.113.7", None, "203.0.113.7"),  # client garbage to the left
        ("10.0.0.1", "1.2.3.4, 10.0.0.0/8", None, "10.0.0.0/8"),  # a network string is no trusted hop
        ("10.0.0.1", "1.2.3.4, 10.0.0.9:8080", None, "10.0.0.9:8080"),  # ip:port is not an address
    ],
)
def test_client_ip_garbage(peer: Any, xff: Any, real_ip: Any, expected: Any) -> None:
    assert client_ip(peer, xff, real_ip, TRUSTED) == expected


# --------------------------------------------------------------------------------------------
# crash recovery, timeout, body limit
# --------------------------------------------------------------------------------------------


async def test_crash_is_a_generic_500(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def boom(request: web.Request, path: dict[str, str]) -> web.Response:
        raise KeyError("very-secret-internal-detail")

    monkeypatch.setitem(views.HANDLERS, "list_sessions", boom)
    with caplog.at_level(logging.INFO, logger="session_service"):
        resp = await client.get("/sessions", headers={"X-Request-ID": "crash-1"})
    body = await resp.read()
    assert resp.status == 500
    assert body == b'{"detail":"Internal server error (KeyError)"}'
    assert resp.headers["Content-Type"].startswith("application/json")
    assert b"Traceback" not in body and b"very-secret" not in body
    assert resp.headers["X-Request-ID"] == "crash-1"
    # The traceback goes to the error log, with the request id.
    errors = [r for r in caplog.records if r.name == "session_service.error"]
    assert len(errors) == 1 and errors[0].exc_info is not None and errors[0].request_id == "crash-1"  # type: ignore[attr-defined]
    (line,) = [line for line in access_lines(caplog) if line["request_id"] == "crash-1"]
    assert (line["status"], line["route"]) == (500, "/sessions")
    # The app keeps serving.
    monkeypatch.undo()
    assert (await client.get("/sessions")).status == 200


@pytest.mark.parametrize("exc", [ValueError("x"), asyncpg.PostgresError("y"), ZeroDivisionError()])
async def test_crash_names_the_exception_class(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, exc: Exception
) -> None:
    async def boom(request: web.Request, path: dict[str, str]) -> web.Response:
        raise exc

    monkeypatch.setitem(views.HANDLERS, "get_session", boom)
    resp = await client.get("/sessions/whatever")
    assert resp.status == 500
    assert await resp.json() == {"detail": f"Internal server error ({type(exc).__name__})"}


async def test_timeout_is_504(make_client: MakeClient, monkeypatch: pytest.MonkeyPatch) -> None:
    client = await make_client(request_timeout_s=0.2)
    cancelled = asyncio.Event()

    async def slow(request: web.Request, path: dict[str, str]) -> web.Response:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return web.Response(text="too late")

    monkeypatch.setitem(views.HANDLERS, "list_sessions", slow)
    loop = asyncio.get_running_loop()
    started = loop.time()
    resp = await client.get("/sessions")
    assert resp.status == 504
    assert await resp.read() == b'{"detail":"Request timed out after 0.2 s"}'
    assert resp.headers["Content-Type"].startswith("application/json")
    assert loop.time() - started < 2
    assert cancelled.is_set()  # the handler was stopped, not left running
    # Fast requests are unaffected.
    monkeypatch.undo()
    assert (await client.get("/sessions")).status == 200


async def test_handler_timeout_error_is_not_the_request_timeout(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def raises_timeout(request: web.Request, path: dict[str, str]) -> web.Response:
        raise TimeoutError("a query timed out")

    monkeypatch.setitem(views.HANDLERS, "list_sessions", raises_timeout)
    resp = await client.get("/sessions")
    # The database's own timeouts (connect, command) mean it is away: 503, not the deadline's 504.
    assert (resp.status, await resp.json()) == (503, {"detail": "Database unavailable (TimeoutError)"})
    assert resp.headers["Retry-After"] == "2"


async def _session_exists(client: TestClient, session_id: str) -> bool:
    resp = await client.get(f"/sessions/{session_id}")
    assert resp.status in (200, 404)
    return resp.status == 200


async def test_body_limit_is_413_and_writes_nothing(make_client: MakeClient) -> None:
    client = await make_client(max_body_bytes=256)
    sid = f"mw-too-big-{uuid.uuid4().hex}"
    body = json.dumps({"session_id": sid, "session_state": {"blob": "x" * 2000}})
    try:
        resp = await client.post("/sessions?type=agent", data=body, headers={"Content-Type": "application/json"})
        assert resp.status == 413
        assert await resp.read() == b'{"detail":"Request body too large (limit 256 bytes)"}'
        assert resp.headers["Content-Type"].startswith("application/json")
        assert not await _session_exists(client, sid)
    finally:
        await client.delete(f"/sessions/{sid}")


async def test_body_limit_without_content_length(make_client: MakeClient) -> None:
    """A chunked body has no Content-Length: the limit bites while reading it."""
    client = await make_client(max_body_bytes=256)
    sid = f"mw-chunked-{uuid.uuid4().hex}"
    payload = json.dumps({"session_id": sid, "session_state": {"blob": "y" * 2000}}).encode()

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(payload), 100):
            yield payload[i : i + 100]

    try:
        resp = await client.post("/sessions?type=agent", data=chunks(), headers={"Content-Type": "application/json"})
        assert resp.status == 413
        assert await resp.json() == {"detail": "Request body too large (limit 256 bytes)"}
        assert not await _session_exists(client, sid)
    finally:
        await client.delete(f"/sessions/{sid}")


async def test_body_limit_holds_where_the_body_is_never_read(make_client: MakeClient) -> None:
    """GET /sessions ignores its body; a declared oversize body is refused before the handler."""
    client = await make_client(max_body_bytes=256)
    resp = await client.get("/sessions", data=b"z" * 1000)
    assert resp.status == 413
    assert await resp.json() == {"detail": "Request body too large (limit 256 bytes)"}
    assert (await client.get("/sessions", data=b"z" * 100)).status == 200


async def test_body_under_the_limit_is_served(make_client: MakeClient) -> None:
    client = await make_client(max_body_bytes=256)
    sid = f"mw-small-{uuid.uuid4().hex[:8]}"
    try:
        resp = await client.post("/sessions?type=agent", json={"session_id": sid, "session_state": {"a": 1}})
        assert resp.status == 201, await resp.text()
        assert await _session_exists(client, sid)
    finally:
        assert (await client.delete(f"/sessions/{sid}")).status == 204


# --------------------------------------------------------------------------------------------
# auth (OS_SECURITY_KEY)
# --------------------------------------------------------------------------------------------


@pytest.fixture
async def secured(make_client: MakeClient) -> TestClient:
    return await make_client(env_extra={"OS_SECURITY_KEY": "k3y"})


@pytest.mark.parametrize(
    "headers, detail",
    [
        ({}, "Authorization header required"),
        ({"Authorization": ""}, "Authorization header required"),
        # As the real AgentOS 3.1.10 answers (checked): a scheme without a key is a wrong key.
        ({"Authorization": "Bearer"}, "Invalid authentication token"),
        ({"Authorization": "Bearer wrong"}, "Invalid authentication token"),
        ({"Authorization": "wrong"}, "Invalid authentication token"),
        ({"Authorization": "Bearer k3y-and-more"}, "Invalid authentication token"),
        ({"Authorization": "Basic k3y"}, "Invalid authentication token"),
        ({"Authorization": "Bearer K3Y"}, "Invalid authentication token"),
    ],
)
async def test_auth_rejects(secured: TestClient, headers: dict[str, str], detail: str) -> None:
    resp = await secured.get("/sessions", headers=headers)
    assert resp.status == 401
    assert await resp.read() == json.dumps({"detail": detail}, separators=(",", ":")).encode()


@pytest.mark.parametrize("value", ["Bearer k3y", "bearer k3y", "BEARER k3y", "k3y", "Bearer  k3y "])
async def test_auth_accepts(secured: TestClient, value: str) -> None:
    resp = await secured.get("/sessions", headers={"Authorization": value})
    assert resp.status == 200
    assert "meta" in await resp.json()


async def test_auth_runs_before_routing(secured: TestClient) -> None:
    # As AgentOS: without a key an unknown path is a 401, not a 404; with it, the 404.
    assert (await secured.get("/no/such")).status == 401
    assert (await secured.get("/no/such", headers={"Authorization": "k3y"})).status == 404


@pytest.mark.parametrize("path", ["/healthz", "/metrics"])
async def test_operational_routes_are_open(secured: TestClient, path: str) -> None:
    assert (await secured.get(path)).status == 200
    assert (await secured.get(path, headers={"Authorization": "Bearer wrong"})).status == 200


async def test_no_key_means_open(client: TestClient) -> None:
    assert (await client.get("/sessions", headers={"Authorization": "Bearer anything"})).status == 200


# --------------------------------------------------------------------------------------------
# /healthz
# --------------------------------------------------------------------------------------------


async def test_healthz_ok(client: TestClient) -> None:
    resp = await client.get("/healthz")
    assert resp.status == 200
    assert await resp.json() == {"status": "ok"}


async def test_healthz_503_when_pool_is_closed(client: TestClient) -> None:
    app = client.app
    assert app is not None
    await app[DATABASES][DB_ID].pool.close()
    resp = await client.get("/healthz")
    assert resp.status == 503
    assert resp.headers["Content-Type"].startswith("application/json")
    body = await resp.json()
    assert body["status"] == "unavailable" and body["db_id"] == DB_ID
    assert re.fullmatch(r"database unreachable \(\w+\)", body["reason"])


async def test_healthz_503_when_database_port_is_closed(client: TestClient) -> None:
    app = client.app
    assert app is not None
    handle = app[DATABASES][DB_ID]
    # min_size=0: the pool connects lazily, so creating it against a closed port succeeds.
    dead = await asyncpg.create_pool(CLOSED_PORT_DSN, min_size=0, max_size=1)
    original, handle.pool = handle.pool, dead
    try:
        resp = await client.get("/healthz")
        assert resp.status == 503
        body = await resp.json()
        assert body["db_id"] == DB_ID
        assert body["reason"] in ("database unreachable (ConnectionRefusedError)", "database unreachable (OSError)")
    finally:
        handle.pool = original
        await dead.close()
    assert (await client.get("/healthz")).status == 200


async def test_startup_fails_when_database_is_unreachable(aiohttp_client: Any, base_env: dict[str, str]) -> None:
    settings = load_settings({**base_env, "AGNO_PG_DSN": CLOSED_PORT_DSN})
    with pytest.raises(OSError):
        await aiohttp_client(create_app(settings))


# --------------------------------------------------------------------------------------------
# /metrics
# --------------------------------------------------------------------------------------------


async def test_metrics_after_a_request(client: TestClient) -> None:
    before = samples(await metrics_text(client), "agno_session_db_query_duration_seconds_count")
    assert (await client.get("/sessions")).status == 200
    text = await metrics_text(client)

    requests = samples(text, "agno_session_requests_total")
    assert requests[(("method", "GET"), ("route", "/sessions"), ("status", "200"))] == 1.0
    latency = samples(text, "agno_session_request_duration_seconds_count")
    assert latency[(("method", "GET"), ("route", "/sessions"))] == 1.0
    buckets = samples(text, "agno_session_request_duration_seconds_bucket")
    assert buckets[(("le", "+Inf"), ("method", "GET"), ("route", "/sessions"))] == 1.0
    assert len([k for k in buckets if ("route", "/sessions") in k]) > 10

    queries = samples(text, "agno_session_db_query_duration_seconds_count")
    key = (("db_id", DB_ID),)
    assert queries[key] > before.get(key, 0)  # the list ran SQL, and it was timed

    size = samples(text, "agno_session_db_pool_size")
    assert size[key] >= 1
    assert samples(text, "agno_session_db_pool_in_use")[key] == 0  # nothing checked out between requests
    assert f'agno_session_db_pool_size{{db_id="{DB_ID}"}}' in text


async def test_metrics_labels_are_templates(client: TestClient) -> None:
    await client.get(f"/sessions/{SEEDED_SESSION}")
    await client.get(f"/sessions/{SEEDED_SESSION}/runs")
    await client.get("/no/such/path/abc123")
    await client.put("/sessions")
    text = await metrics_text(client)
    requests = samples(text, "agno_session_requests_total")
    assert requests[(("method", "GET"), ("route", "/sessions/{session_id}"), ("status", "200"))] == 1.0
    assert requests[(("method", "GET"), ("route", "/sessions/{session_id}/runs"), ("status", "200"))] == 1.0
    assert requests[(("method", "GET"), ("route", "unmatched"), ("status", "404"))] == 1.0
    assert requests[(("method", "PUT"), ("route", "method_not_allowed"), ("status", "405"))] == 1.0
    assert SEEDED_SESSION not in text and "abc123" not in text


async def test_metrics_are_per_app(make_client: MakeClient) -> None:
    first, second = await make_client(), await make_client()
    await first.get("/sessions")
    assert (
        samples(await metrics_text(second), "agno_session_requests_total").get(
            (("method", "GET"), ("route", "/sessions"), ("status", "200"))
        )
        is None
    )


async def test_metrics_method_label_is_bounded(client: TestClient) -> None:
    """The method label is the raw method, bounded only because aiohttp's parser (llhttp) rejects
    methods outside its fixed list with a 400 before any middleware runs."""
    resp = await client.request("X0METHOD", "/sessions")
    assert resp.status == 400
    resp = await client.request("PROPFIND", "/sessions")  # a known method, not routed here
    assert resp.status == 405
    text = await metrics_text(client)
    assert "X0METHOD" not in text
    requests = samples(text, "agno_session_requests_total")
    assert requests[(("method", "PROPFIND"), ("route", "method_not_allowed"), ("status", "405"))] == 1.0


# --------------------------------------------------------------------------------------------
# routing: 404, 405, trailing slashes
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/nope", "/", "/sessions/a/b", "/healthz/x"])
async def test_unknown_path_is_404(client: TestClient, path: str) -> None:
    resp = await client.get(path)
    assert resp.status == 404
    assert await resp.read() == b'{"detail":"Not Found"}'
    assert resp.headers["Content-Type"].startswith("application/json")


@pytest.mark.parametrize(
    "method, path",
    [("PUT", "/sessions"), ("PATCH", "/sessions"), ("GET", "/sessions/x/rename"), ("POST", "/sessions/x")],
)
async def test_wrong_method_is_405_with_allow(client: TestClient, method: str, path: str) -> None:
    resp = await client.request(method, path)
    assert resp.status == 405
    assert await resp.read() == b'{"detail":"Method Not Allowed"}'
    allow = [m.strip() for m in resp.headers["Allow"].split(",")]
    assert allow and method not in allow
    assert ("POST" in allow) if path.endswith("/rename") else ("GET" in allow)


@pytest.mark.parametrize(
    "slashed, plain",
    [
        ("/sessions/", "/sessions"),
        ("/sessions//", "/sessions"),
        (f"/sessions/{SEEDED_SESSION}/", f"/sessions/{SEEDED_SESSION}"),
    ],
)
async def test_trailing_slash_is_the_same_route(client: TestClient, slashed: str, plain: str) -> None:
    a, b = await client.get(slashed), await client.get(plain)
    assert a.status == b.status == 200
    assert await a.read() == await b.read()
