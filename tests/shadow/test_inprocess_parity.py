"""The in-process native side against the native service over HTTP: a differential.

The gateway's `InProcessNative` calls the core (session_service/core.py) with a request value
it builds itself (`core.request_value`: the target parsed as aiohttp's HTTP parser parses it);
`agentos-session serve` gets the same core through aiohttp's parser and the app's adapter. Each
case below goes to both, the same `comparator.Request` through the gateway's two `Side`
implementations (`InProcessNative`, and `HttpSide` at a real `agentos-session serve` process
with the same environment), and the answers must be the same bytes: status, every header but
the per-connection ones aiohttp's server adds (`Date`, `Server`, `Connection`; the gateway
drops them too), and the body. The targets
are the odd ones, where two parsers could disagree: newlines and invalid UTF-8 in ids, `%2F`,
repeated query keys, `;`, a long request line, a body over the limit, CORS preflights, 401/403.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from comparator import Request
from harness.processes import Process
from harness.services import start_native
from session_service.app import create_app as create_native_app
from session_service.config import load_settings
from shadow_proxy.sides import Answer, HttpSide, InProcessNative
from tests.legacy.fixtures import SECURITY_KEY, serving

MAX_BODY = 4096
ORIGIN = "https://os.agno.com"  # one of agno's default CORS origins
PER_CONNECTION = frozenset({"date", "server", "connection"})
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PUBLIC_PEM = (
    KEY.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
)


def token(**claims: Any) -> str:
    claims.setdefault("exp", int(time.time()) + 600)
    return jwt.encode(claims, KEY, algorithm="RS256")


def rid(i: int) -> dict[str, str]:
    """A fixed request id: both sides then answer the same `X-Request-ID`."""
    return {"X-Request-ID": f"parity-{i}"}


def json_body(value: Any) -> tuple[dict[str, str], bytes]:
    return {"Content-Type": "application/json"}, json.dumps(value).encode()


# (method, target, headers, body) against the open service (no key).
OPEN_CASES: list[tuple[str, str, dict[str, str], bytes]] = [
    ("GET", "/sessions/s-agent-1", {}, b""),
    ("GET", "/sessions/s-agent-1?type=agent&type=team", {}, b""),  # a repeated key: the last counts
    ("GET", "/sessions?limit=1&limit=2&page=1", {}, b""),
    ("GET", "/sessions?limit=2;page=1", {}, b""),  # `;` is no separator (agno, aiohttp)
    ("GET", "/sessions?limit=2&&=&=x&flag", {}, b""),
    ("GET", "/sessions?session_name=%FF%FE&user_id=%E2%82", {}, b""),  # invalid UTF-8 in the query
    ("GET", "/sessions?user_id=a+b%20c%2Bd", {}, b""),  # `+` and `%20` are spaces, `%2B` a plus
    ("GET", "/sessions/a%2Fb", {}, b""),  # `%2F` is one segment for agno
    ("GET", "/sessions/a%2Fb/runs", {}, b""),
    ("GET", "/sessions/%FF%FE", {}, b""),  # invalid UTF-8 in an id
    ("GET", "/sessions/%ED%A0%80", {}, b""),  # a lone surrogate, encoded
    ("GET", "/sessions/line%0Abreak", {}, b""),  # a newline in an id
    ("GET", "/sessions/tab%09and%00nul", {}, b""),
    ("GET", "/sessions/s-agent-1/", {}, b""),  # trailing slash: the same route
    ("GET", "//sessions", {}, b""),
    ("GET", "/sessions/%73-agent-1", {}, b""),  # an escaped plain letter
    ("GET", "/sessions/s-agent-1#fragment", {}, b""),
    ("GET", "/sessions?user_id=" + "u" * 20000, {}, b""),  # a long request line (under HEAD_LIMIT)
    ("GET", "/sessions/" + "x" * 30000, {}, b""),
    ("PUT", "/sessions", {}, b""),  # 405 with Allow
    ("PROPFIND", "/sessions", {}, b""),
    ("GET", "/no/such/route", {}, b""),
    ("GET", "/sessions?type=nonsense&limit=-1", {}, b""),  # 422, both errors
    ("POST", "/sessions?type=agent", *json_body({"session_state": {"blob": "x" * (2 * MAX_BODY)}})),  # 413
    ("GET", "/sessions", {}, b"z" * (MAX_BODY + 1)),  # 413 even where the body is never read
    ("POST", "/sessions?type=agent", {"Content-Type": "application/json"}, b"{not json"),
    ("POST", "/sessions?type=agent", {"Content-Type": "application/json"}, b"\xff\xfe"),
    ("POST", "/sessions/no-such-session/rename", *json_body({"session_name": "n"})),
    ("PATCH", "/sessions/no-such-session", *json_body({"summary": {"summary": 1}})),
    ("DELETE", "/sessions/no-such-session-parity", {}, b""),
    ("OPTIONS", "/sessions", {"Origin": ORIGIN, "Access-Control-Request-Method": "GET"}, b""),
    (
        "OPTIONS",
        "/sessions/s-agent-1",
        {"Origin": ORIGIN, "Access-Control-Request-Method": "PATCH", "Access-Control-Request-Headers": "x-a, x-b"},
        b"",
    ),
    ("OPTIONS", "/sessions", {"Origin": "https://evil.example", "Access-Control-Request-Method": "BREW"}, b""),
    ("OPTIONS", "/sessions", {"Origin": ORIGIN}, b""),  # not a preflight: routed (405)
    ("GET", "/sessions/s-agent-1", {"Origin": ORIGIN}, b""),
    ("GET", "/sessions/s-agent-1", {"Origin": "https://evil.example"}, b""),
    ("GET", "/sessions/s-agent-1", {"X-Request-ID": "has space"}, b""),  # replaced: see below
    ("GET", "/healthz", {}, b""),
    ("HEAD", "/healthz", {}, b""),
    ("POST", "/healthz", {}, b""),
    ("GET", "/readyz", {}, b""),
    ("GET", "/openapi.json", {}, b""),
    ("GET", "/healthz/", {}, b""),
]

BEARER = {"Authorization": f"Bearer {SECURITY_KEY}"}
KEY_CASES: list[tuple[str, str, dict[str, str], bytes]] = [
    ("GET", "/sessions", {}, b""),
    ("GET", "/sessions", {"Authorization": "Bearer wrong"}, b""),
    ("GET", "/sessions", {"Authorization": "Bearer wrong", "Origin": ORIGIN}, b""),  # CORS on a 401
    ("GET", "/sessions?limit=1", BEARER, b""),
    ("GET", "/sessions?limit=1", {"Authorization": SECURITY_KEY}, b""),  # a bare key
    ("GET", "/no/such/route", {}, b""),  # auth before routing: 401
    ("OPTIONS", "/sessions", {"Origin": ORIGIN, "Access-Control-Request-Method": "DELETE"}, b""),
    ("GET", "/healthz", {}, b""),
    ("GET", "/openapi.json", {}, b""),
]

JWT_CASES: list[tuple[str, str, dict[str, str], bytes]] = [
    ("GET", "/sessions", {}, b""),
    ("GET", "/sessions", {"Authorization": "Bearer not-a-jwt"}, b""),
    ("GET", "/sessions", {"Authorization": f"Bearer {token(sub='u1')}"}, b""),  # no scope: 403
    ("GET", "/sessions", {"Authorization": f"Bearer {token(sub='u1')}", "Origin": ORIGIN}, b""),
    ("GET", "/sessions?limit=1", {"Authorization": f"Bearer {token(sub='u1', scopes=['sessions:read'])}"}, b""),
    ("DELETE", "/sessions/x", {"Authorization": f"Bearer {token(sub='u1', scopes=['sessions:read'])}"}, b""),
]

OPEN_ENV = {"AGNO_MAX_BODY_BYTES": str(MAX_BODY)}
KEY_ENV = {"OS_SECURITY_KEY": SECURITY_KEY}
JWT_ENV = {"JWT_VERIFICATION_KEY": PUBLIC_PEM}


def _env(pg_dsn: str, extra: Mapping[str, str]) -> dict[str, str]:
    return {"AGNO_PG_DSN": pg_dsn, "AGNO_DEFAULT_DB_ID": "main-db", **extra}


def _start(request: pytest.FixtureRequest, pg_dsn: str, extra: Mapping[str, str], name: str) -> Iterator[Process]:
    yield from serving(request, start_native(_env(pg_dsn, extra), name))


@pytest.fixture(scope="module")
def open_native(request: pytest.FixtureRequest, seeded: None, pg_dsn: str) -> Iterator[Process]:
    yield from _start(request, pg_dsn, OPEN_ENV, "native-parity")


@pytest.fixture(scope="module")
def key_native(request: pytest.FixtureRequest, seeded: None, pg_dsn: str) -> Iterator[Process]:
    yield from _start(request, pg_dsn, KEY_ENV, "native-parity-key")


@pytest.fixture(scope="module")
def jwt_native(request: pytest.FixtureRequest, seeded: None, pg_dsn: str) -> Iterator[Process]:
    yield from _start(request, pg_dsn, JWT_ENV, "native-parity-jwt")


def _seen(answer: Answer) -> tuple[int, dict[str, str], bytes, str | None]:
    r = answer.response
    headers = {k: v for k, v in r.headers.items() if k.lower() not in PER_CONNECTION}
    if headers.get("X-Request-ID", "").startswith("parity-") is False:
        headers["X-Request-ID"] = "<generated>"  # a made-up id differs by design (checked apart)
    return r.status, headers, r.body, r.error


async def _differences(
    url: str, env: Mapping[str, str], cases: list[tuple[str, str, dict[str, str], bytes]]
) -> list[Any]:
    over_http = HttpSide("native", url, 4)
    in_process = InProcessNative(create_native_app(load_settings(env), access_log_level=logging.DEBUG))
    await over_http.start()
    await in_process.start()
    found = []
    try:
        for i, (method, target, headers, body) in enumerate(cases):
            sent = Request(method, target, {**rid(i), **headers}, body)
            want, got = _seen(await over_http.send(sent, 30)), _seen(await in_process.send(sent, 30))
            assert want[3] is None, (target[:80], want[3])  # the HTTP side answered
            if want != got:
                found.append((method, target[:80], want, got))
    finally:
        await in_process.close()
        await over_http.close()
    return found


async def test_open_service_answers_the_same_bytes_in_process(open_native: Process, pg_dsn: str) -> None:
    assert await _differences(open_native.url, _env(pg_dsn, OPEN_ENV), OPEN_CASES) == []


async def test_security_key_refusals_are_the_same_in_process(key_native: Process, pg_dsn: str) -> None:
    assert await _differences(key_native.url, _env(pg_dsn, KEY_ENV), KEY_CASES) == []


async def test_jwt_refusals_are_the_same_in_process(jwt_native: Process, pg_dsn: str) -> None:
    assert await _differences(jwt_native.url, _env(pg_dsn, JWT_ENV), JWT_CASES) == []


async def test_the_cases_cover_the_answers_they_name(open_native: Process, pg_dsn: str) -> None:
    """The differential would pass on two equally broken paths; pin what the odd cases answer."""
    side = InProcessNative(create_native_app(load_settings(_env(pg_dsn, OPEN_ENV))))
    await side.start()
    try:

        async def status(method: str, target: str, headers: dict[str, str], body: bytes = b"") -> int:
            return (await side.send(Request(method, target, headers, body), 30)).response.status

        assert await status("GET", "/sessions/s-agent-1", {}) == 200
        assert await status("GET", "/sessions/a%2Fb", {}) == 404
        assert await status("PUT", "/sessions", {}) == 405
        assert await status("GET", "/sessions", {}, b"z" * (MAX_BODY + 1)) == 413
        assert await status("GET", "/sessions?user_id=" + "u" * 20000, {}) == 200
        preflight = {"Origin": ORIGIN, "Access-Control-Request-Method": "GET"}
        assert await status("OPTIONS", "/sessions", preflight) == 200
        head = await side.send(Request("HEAD", "/healthz", {}, b""), 30)
        assert (head.response.status, head.response.body) == (200, b"")
        made_up = await side.send(Request("GET", "/sessions/s-agent-1", {"X-Request-ID": "has space"}, b""), 30)
        assert len(made_up.response.headers["X-Request-ID"]) == 32
    finally:
        await side.close()


async def test_metrics_are_the_same_families_in_process(open_native: Process, pg_dsn: str) -> None:
    """`/metrics` counts each side's own requests, so its numbers differ; its status, headers
    and the metric families it exports may not."""
    over_http = HttpSide("native", open_native.url, 4)
    in_process = InProcessNative(create_native_app(load_settings(_env(pg_dsn, OPEN_ENV))))
    await over_http.start()
    await in_process.start()
    try:
        answers = []
        for side in (over_http, in_process):
            await side.send(Request("GET", "/sessions/s-agent-1", rid(0), b""), 30)
            answers.append(await side.send(Request("GET", "/metrics", rid(1), b""), 30))
    finally:
        await in_process.close()
        await over_http.close()
    (status_a, headers_a, body_a, _), (status_b, headers_b, body_b, _) = (_seen(a) for a in answers)
    headers_a.pop("Content-Length"), headers_b.pop("Content-Length")
    assert (status_a, headers_a) == (status_b, headers_b) and status_a == 200

    def families(body: bytes) -> list[str]:
        return [line for line in body.decode().splitlines() if line.startswith("# TYPE")]

    assert families(body_a) == families(body_b)
    assert 'route="/sessions/{session_id}"' in body_b.decode()
