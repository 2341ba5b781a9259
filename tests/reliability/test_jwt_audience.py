"""agno's JWT audience and issuer options (set in agno's code: `AuthorizationConfig(verify_audience=
True, audience=...)`, `Authorization(issuer=...)`), set in native by `AGNO_JWT_AUDIENCE` and
`AGNO_JWT_ISSUER` (session_service/auth_jwt.py).

- The audience, differential: a real AgentOS with audience verification
  (tests/reliability/agentos_jwt_app.py, JWT_TEST_AUDIENCE) and the native service answer every token the
  same (status, body, CORS headers), through agno's middleware and its 401 texts.
- The audience and the issuer against agno's own validator (`agno.os.middleware.jwt.
  JWTValidator.validate_token`, configured with the key, audience and issuer): the same payload
  or the same exception class and message for every token.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from agno.os.middleware.jwt import JWTValidator

from session_service.app import create_app
from session_service.auth_jwt import jwt_config_from_env, validate_token
from session_service.config import load_settings
from tests.legacy.fixtures import AgentOSProcess
from tests.reliability.test_jwt import KEY, ORIGIN, PUBLIC_PEM, answer, bearer, token

AUDIENCE = "sessions-api"
ISSUER = "https://idp.example.test/"
READ = ["sessions:read"]

# Tokens for the audience and issuer checks: (claims) each with a valid signature.
CLAIMS: list[dict[str, Any]] = [
    {"sub": "u1", "scopes": READ},  # no aud, no iss
    {"sub": "u1", "scopes": READ, "aud": AUDIENCE},
    {"sub": "u1", "scopes": READ, "aud": "another-api"},
    {"sub": "u1", "scopes": READ, "aud": ["another-api", AUDIENCE]},
    {"sub": "u1", "scopes": READ, "aud": ["another-api"]},
    {"sub": "u1", "scopes": READ, "aud": []},
    {"sub": "u1", "scopes": READ, "aud": ""},
    {"sub": "u1", "scopes": READ, "aud": AUDIENCE, "iss": ISSUER},
    {"sub": "u1", "scopes": READ, "aud": AUDIENCE, "iss": "https://other.example.test/"},
    {"sub": "u1", "scopes": READ, "aud": AUDIENCE, "iss": ISSUER.rstrip("/")},
    {"sub": "u1", "aud": AUDIENCE},  # no scope: audience first, then the 403
    {"sub": "sa:robot", "scopes": ["agent_os:admin"], "aud": "another-api"},
]


@pytest.fixture(scope="module")
def legacy_audience_url(seeded: None, pg_dsn: str, fake_openai_url: str) -> Iterator[str]:
    server = AgentOSProcess(
        pg_dsn,
        fake_openai_url,
        name="agentos-legacy-jwt-audience",
        app="tests.reliability.agentos_jwt_app:app",
        extra_env={"JWT_VERIFICATION_KEY": PUBLIC_PEM, "JWT_TEST_AUDIENCE": AUDIENCE},
    )
    try:
        yield server.url
    finally:
        server.stop()


async def test_audience_answers_are_agnos(aiohttp_client: Any, legacy_audience_url: str, pg_dsn: str) -> None:
    cases = [("GET", "/sessions?limit=2", bearer(token(**claims))) for claims in CLAIMS]
    cases += [
        ("GET", "/sessions", {**bearer(token(sub="u1", scopes=READ, aud="another-api")), "Origin": ORIGIN}),
        ("DELETE", "/sessions/no-such-session", bearer(token(sub="u1", scopes=["sessions:delete"], aud=AUDIENCE))),
        ("GET", "/sessions", bearer(token(sub="u1", scopes=READ, aud=AUDIENCE, exp=1))),  # expired
        ("GET", "/sessions", {}),
    ]
    env = {"AGNO_PG_DSN": pg_dsn, "AGNO_DEFAULT_DB_ID": "main-db", "JWT_VERIFICATION_KEY": PUBLIC_PEM}
    client = await aiohttp_client(create_app(load_settings({**env, "AGNO_JWT_AUDIENCE": AUDIENCE})))
    differences = []
    async with httpx.AsyncClient(base_url=legacy_audience_url, timeout=30) as legacy:
        for method, path, headers in cases:
            want = await legacy.request(method, path, headers=headers)
            resp = await client.request(method, path, headers=headers)
            got = answer(resp.status, {k.lower(): v for k, v in resp.headers.items()}, await resp.read())
            expected = answer(want.status_code, {k.lower(): v for k, v in want.headers.items()}, want.content)
            if got != expected:
                differences.append((method, path, expected, got))
    assert differences == []


def _outcome(call: Any) -> tuple[str, str]:
    try:
        return "payload", repr(sorted(call().items()))
    except Exception as exc:  # the class and message are what agno's middleware reports
        return type(exc).__name__, str(exc)


@pytest.mark.parametrize(
    ("audience", "issuer"), [(AUDIENCE, None), (None, ISSUER), (AUDIENCE, ISSUER), (f"x,{AUDIENCE}", ISSUER)]
)
def test_validation_is_agnos_validator(audience: str | None, issuer: str | None) -> None:
    env = {"JWT_VERIFICATION_KEY": PUBLIC_PEM}
    if audience:
        env["AGNO_JWT_AUDIENCE"] = audience
    if issuer:
        env["AGNO_JWT_ISSUER"] = issuer
    native = jwt_config_from_env(env)
    assert native is not None
    agno = JWTValidator(verification_keys=[PUBLIC_PEM], issuer=issuer)
    expected_audience = audience.split(",") if audience else None
    differences = []
    for claims in CLAIMS:
        raw = token(KEY, **claims)
        want = _outcome(functools.partial(agno.validate_token, raw, expected_audience))
        got = _outcome(functools.partial(validate_token, native, raw))
        if got != want:
            differences.append((claims, want, got))
    assert differences == []
    assert issubclass(jwt.InvalidAudienceError, jwt.InvalidTokenError)  # why check() catches it first
