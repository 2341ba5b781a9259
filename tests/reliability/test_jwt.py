"""agno's JWT mode, differential: a real AgentOS with `authorization=True` and
`JWT_VERIFICATION_KEY` (tests/reliability/agentos_jwt_app.py) and the native service configured
the same way (the key, or a JWKS file holding it) answer every token the same: status, body and
CORS headers. Tokens are made here with an RSA key generated for the run."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from session_service.app import create_app
from session_service.config import ConfigError, load_settings
from tests.legacy.fixtures import AgentOSProcess

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PUBLIC_PEM = (
    KEY.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ORIGIN = "https://os.agno.com"  # allowed by agno's default CORS origins


@pytest.fixture(scope="module")
def legacy_jwt_url(seeded: None, pg_dsn: str, fake_openai_url: str) -> Iterator[str]:
    """A real AgentOS in agno's JWT mode (tests.reliability.agentos_jwt_app) with the key."""
    server = AgentOSProcess(
        pg_dsn,
        fake_openai_url,
        name="agentos-legacy-jwt",
        app="tests.reliability.agentos_jwt_app:app",
        extra_env={"JWT_VERIFICATION_KEY": PUBLIC_PEM},
    )
    try:
        yield server.url
    finally:
        server.stop()


def token(key: Any = KEY, algorithm: str = "RS256", headers: dict[str, Any] | None = None, **claims: Any) -> str:
    claims.setdefault("exp", int(time.time()) + 600)
    return jwt.encode(claims, key, algorithm=algorithm, headers=headers)


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


# (method, path, headers): every refusal agno has for these routes, and the passes.
CASES: list[tuple[str, str, dict[str, str]]] = [
    ("GET", "/sessions", {}),
    ("GET", "/sessions", {"Origin": ORIGIN}),
    ("GET", "/sessions", bearer("not-a-jwt")),
    ("GET", "/sessions", bearer(token(sub="u1"))),
    ("GET", "/sessions", {**bearer(token(sub="u1")), "Origin": ORIGIN}),
    ("GET", "/sessions?limit=2", bearer(token(sub="u1", scopes=["sessions:read"]))),
    ("GET", "/sessions?limit=2", bearer(token(sub="u1", scopes="sessions:read"))),
    ("GET", "/sessions?limit=2", bearer(token(sub="u1", scopes=["agent_os:admin"]))),
    ("GET", "/sessions?limit=2", {"Authorization": token(scopes=["sessions:read"])}),  # bare, no sub
    ("GET", "/sessions", bearer(token(sub="u1", scopes=["sessions:*"]))),
    ("GET", "/sessions", bearer(token(sub="u1", scopes=["sessions:s1:read"]))),
    ("GET", "/sessions", bearer(token(sub="u1", scopes=["sessions:read"], exp=int(time.time()) - 100))),
    ("GET", "/sessions", bearer(token(sub="u1", scopes=["sessions:read"], nbf=int(time.time()) + 1000))),
    ("GET", "/sessions", bearer(token(sub="u1", scopes=["sessions:read"], iat="yesterday"))),
    ("GET", "/sessions", bearer(token(OTHER_KEY, sub="u1", scopes=["sessions:read"]))),
    (
        "GET",
        "/sessions",
        bearer(token("a-shared-secret-of-at-least-32-bytes!", "HS256", sub="u1", scopes=["sessions:read"])),
    ),
    ("GET", "/sessions", bearer(token(sub="sa:robot", scopes=["agent_os:admin"]))),
    ("GET", "/sessions", bearer(token(sub="__scheduler__", scopes=["agent_os:admin"]))),
    ("GET", "/sessions", bearer(token(sub="__oauth__:client", scopes=["agent_os:admin"]))),
    ("GET", "/sessions/no-such-session", bearer(token(sub="u1", scopes=["sessions:write"]))),
    ("GET", "/sessions/no-such-session", bearer(token(sub="u1", scopes=["sessions:read"]))),
    ("GET", "/sessions/no-such-session/runs", bearer(token(sub="u1", scopes=["sessions:delete"]))),
    ("POST", "/sessions?type=agent", bearer(token(sub="u1", scopes=["sessions:read", "sessions:delete"]))),
    ("POST", "/sessions/no-such-session/rename", bearer(token(sub="u1", scopes=["sessions:read"]))),
    ("PATCH", "/sessions/no-such-session", bearer(token(sub="u1", scopes=["sessions:delete"]))),
    ("PATCH", "/sessions/no-such-session", bearer(token(sub="u1", scopes=["sessions:write"]))),
    ("DELETE", "/sessions/no-such-session", {**bearer(token(sub="u1", scopes=["sessions:write"])), "Origin": ORIGIN}),
    ("DELETE", "/sessions", bearer(token(sub="u1", scopes=["sessions:read"]))),
    ("GET", "/not-a-route", bearer(token(sub="u1"))),
    ("GET", "/not-a-route", {}),
]
CORS_HEADERS = (
    "access-control-allow-origin",
    "access-control-allow-credentials",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-expose-headers",
)


def answer(status: int, headers: Any, body: bytes) -> tuple[int, Any, dict[str, str]]:
    cors = {h: headers[h] for h in CORS_HEADERS if h in headers}
    return status, json.loads(body) if body else None, cors


async def _compare(client: Any, legacy_url: str) -> None:
    differences = []
    async with httpx.AsyncClient(base_url=legacy_url, timeout=30) as legacy:
        for method, path, headers in CASES:
            want = await legacy.request(method, path, headers=headers)
            resp = await client.request(method, path, headers=headers)
            got = answer(resp.status, {k.lower(): v for k, v in resp.headers.items()}, await resp.read())
            expected = answer(want.status_code, {k.lower(): v for k, v in want.headers.items()}, want.content)
            if got != expected:
                differences.append((method, path, headers.get("Authorization", "")[:20], expected, got))
    assert differences == []


async def test_jwt_answers_are_agnos(aiohttp_client: Any, legacy_jwt_url: str, pg_dsn: str) -> None:
    settings = load_settings(
        {"AGNO_PG_DSN": pg_dsn, "AGNO_DEFAULT_DB_ID": "main-db", "JWT_VERIFICATION_KEY": PUBLIC_PEM}
    )
    await _compare(await aiohttp_client(create_app(settings)), legacy_jwt_url)


async def test_a_jwks_file_verifies_as_the_key_does(
    aiohttp_client: Any, legacy_jwt_url: str, pg_dsn: str, tmp_path: Path
) -> None:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key()))
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [jwk]}))  # no kid: agno's "_default"
    env = {"AGNO_PG_DSN": pg_dsn, "AGNO_DEFAULT_DB_ID": "main-db", "JWT_JWKS_FILE": str(tmp_path / "jwks.json")}
    await _compare(await aiohttp_client(create_app(load_settings(env))), legacy_jwt_url)


async def test_jwt_mode_wins_over_the_security_key(aiohttp_client: Any, pg_dsn: str) -> None:
    env = {"AGNO_PG_DSN": pg_dsn, "JWT_VERIFICATION_KEY": PUBLIC_PEM, "OS_SECURITY_KEY": "the-key"}
    client = await aiohttp_client(create_app(load_settings(env)))
    resp = await client.get("/sessions", headers=bearer("the-key"))
    assert (resp.status, await resp.json()) == (401, {"detail": "Invalid token: Not enough segments"})
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):  # the operator's routes stay open
        assert (await client.get(path)).status == 200, path


def test_an_unusable_jwks_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="JWKS file not found"):
        load_settings({"AGNO_PG_DSN": "postgresql://x@127.0.0.1/x", "JWT_JWKS_FILE": str(tmp_path / "none.json")})
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="Invalid JSON in JWKS file"):
        load_settings({"AGNO_PG_DSN": "postgresql://x@127.0.0.1/x", "JWT_JWKS_FILE": str(tmp_path / "bad.json")})
