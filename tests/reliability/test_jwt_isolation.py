"""agno's per-user isolation (`AgentOS(authorization=True, user_isolation=True)`), set in native by
`AGNO_USER_ISOLATION=true` beside the JWT key. Differential: a real AgentOS configured so
(tests/reliability/agentos_jwt_app.py, JWT_TEST_USER_ISOLATION) and the native service over the same database
answer the same to tokens of two users, an admin and a token without a subject: status and body.

What agno does (agno/os/middleware/user_scope.py, the session router): for a non-admin caller the
token's `sub` replaces the `user_id` filter of every route, a create is owned by the `sub`
whatever the body says, a create reusing another user's id gets a 409 that does not say so, and
a token without a subject gets 403 `Authenticated request is missing a user identity` (after
query validation and the database lookup). `agent_os:admin` sees everyone's sessions."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from session_service.app import create_app
from session_service.config import load_settings
from tests.legacy.fixtures import AgentOSProcess
from tests.reliability.test_jwt import PUBLIC_PEM, bearer, token

ALL = ["sessions:read", "sessions:write", "sessions:delete"]


@pytest.fixture(scope="module")
def legacy_isolation_url(seeded: None, pg_dsn: str, fake_openai_url: str) -> Iterator[str]:
    server = AgentOSProcess(
        pg_dsn,
        fake_openai_url,
        name="agentos-legacy-jwt-isolation",
        app="tests.reliability.agentos_jwt_app:app",
        extra_env={"JWT_VERIFICATION_KEY": PUBLIC_PEM, "JWT_TEST_USER_ISOLATION": "true"},
    )
    try:
        yield server.url
    finally:
        server.stop()


def _normal(status: int, body: bytes, replace: dict[str, str]) -> tuple[int, Any]:
    text = body.decode()
    for old, new in replace.items():
        text = text.replace(old, new)
    data = json.loads(text) if text else None
    if isinstance(data, dict):  # the write clock of a row this request wrote
        for key in ("created_at", "updated_at"):
            if key in data and replace:
                data[key] = "<clock>"
    return status, data


async def test_isolation_answers_are_agnos(aiohttp_client: Any, legacy_isolation_url: str, pg_dsn: str) -> None:
    tag = uuid.uuid4().hex[:8]
    alice, bob = f"alice-{tag}", f"bob-{tag}"
    as_alice = bearer(token(sub=alice, scopes=ALL))
    as_bob = bearer(token(sub=bob, scopes=ALL))
    as_admin = bearer(token(sub=f"admin-{tag}", scopes=["agent_os:admin"]))
    no_sub = bearer(token(scopes=ALL))
    env = {"AGNO_PG_DSN": pg_dsn, "AGNO_DEFAULT_DB_ID": "main-db", "JWT_VERIFICATION_KEY": PUBLIC_PEM}
    native = await aiohttp_client(create_app(load_settings({**env, "AGNO_USER_ISOLATION": "true"})))
    differences: list[Any] = []
    async with httpx.AsyncClient(base_url=legacy_isolation_url, timeout=30) as legacy:

        async def both(
            method: str, path: str, headers: dict[str, str], body: Any = None, per_side: bool = False
        ) -> Any:
            """One request to each side; with `per_side`, `{sid}` is a session of that side's own."""
            lpath, npath, lbody, nbody = path, path, body, body
            replace: dict[str, str] = {}
            if per_side:
                lpath, npath = path.replace("{sid}", f"l-{tag}"), path.replace("{sid}", f"n-{tag}")
                lbody = json.loads(json.dumps(body).replace("{sid}", f"l-{tag}")) if body is not None else None
                nbody = json.loads(json.dumps(body).replace("{sid}", f"n-{tag}")) if body is not None else None
                replace = {f"l-{tag}": "<sid>", f"n-{tag}": "<sid>"}
            lr = await legacy.request(method, lpath, headers=headers, json=lbody)
            nr = await native.request(method, npath, headers=headers, json=nbody)
            want = _normal(lr.status_code, lr.content, replace)
            got = _normal(nr.status, await nr.read(), replace)
            if got != want:
                differences.append((method, path, headers["Authorization"][-12:], want, got))
            return want

        # Alice's session on each side (a body naming bob changes nothing: the token's sub owns it).
        created = await both(
            "POST", "/sessions?type=agent", as_alice, {"session_id": "{sid}", "agent_id": "a", "user_id": bob}, True
        )
        assert created[0] == 201 and created[1]["user_id"] == alice, created
        # Bob's own session, once (both sides read the same database).
        bobs = await legacy.post(
            "/sessions?type=agent", headers=as_bob, json={"session_id": f"bob-{tag}", "agent_id": "a"}
        )
        assert bobs.status_code == 201, bobs.text
        cases: list[tuple[str, str, dict[str, str], Any]] = [
            ("GET", f"/sessions?type=agent&user_id={bob}", as_alice, None),  # the filter is replaced
            ("GET", "/sessions?type=agent&limit=50", as_alice, None),
            ("GET", f"/sessions?type=agent&user_id={bob}", as_admin, None),  # admin: the filter holds
            ("GET", "/sessions/{sid}?type=agent", as_alice, None),
            ("GET", "/sessions/{sid}?type=agent", as_bob, None),
            ("GET", "/sessions/{sid}/runs?type=agent", as_bob, None),
            ("GET", "/sessions/{sid}/runs/nope?type=agent", as_bob, None),
            ("GET", "/sessions/{sid}?type=agent", as_admin, None),
            ("PATCH", "/sessions/{sid}", as_bob, {"session_name": "bob-was-here"}),
            ("POST", "/sessions/{sid}/rename", as_bob, {"session_name": "bob-was-here"}),
            ("DELETE", "/sessions/{sid}", as_bob, None),
            ("DELETE", "/sessions", as_bob, {"session_ids": ["{sid}"], "session_types": ["agent"]}),
            ("GET", "/sessions/{sid}?type=agent", as_alice, None),  # still there, unchanged
            ("POST", "/sessions?type=agent", as_bob, {"session_id": "{sid}", "agent_id": "a"}),  # generic 409
            ("POST", "/sessions?type=agent", as_alice, {"session_id": "{sid}", "agent_id": "a"}),  # informative
            ("PATCH", "/sessions/{sid}", as_alice, {"session_name": "alice-2"}),
            ("POST", "/sessions/{sid}/rename", as_alice, {"session_name": "alice-3"}),
            ("GET", "/sessions?type=agent", no_sub, None),  # 403: no identity
            ("GET", "/sessions?type=agent&db_id=nope", no_sub, None),  # the database lookup first
            ("GET", "/sessions?limit=abc", no_sub, None),  # query validation first
            ("POST", "/sessions?type=agent", no_sub, {"agent_id": "a"}),
            ("DELETE", "/sessions/{sid}", as_alice, None),
            ("GET", "/sessions/{sid}?type=agent", as_alice, None),  # gone
        ]
        for method, path, headers, body in cases:
            await both(method, path, headers, body, per_side="{sid}" in path or "{sid}" in json.dumps(body))
    assert differences == []
    print(f"\n[jwt isolation] {len(cases) + 2} requests, answers equal to agno's")
