"""agno's JWT mode and the token's identity on writes: with `authorization=True`, agno's create
route stores the token's `sub` as the session's `user_id`, whatever the body says
(agno/os/routers/session/session.py: "Get user_id from request state if available (from auth
middleware)"). Differential: a real AgentOS in JWT mode and the native service configured the
same way, each creating sessions with tokens whose `sub` differs from the body's `user_id`; the
stored owner (read back with SQL) and the answers are compared."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg
import httpx

from session_service.app import create_app
from session_service.config import load_settings
from tests.reliability.test_jwt import PUBLIC_PEM, bearer, legacy_jwt_url, token  # noqa: F401, F811  (fixture)

WRITE = ["sessions:write"]


async def _owner(dsn: str, session_id: str) -> Any:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval("SELECT user_id FROM ai.agno_sessions WHERE session_id = $1", session_id)
    finally:
        await conn.close()


async def test_create_stores_the_tokens_subject_as_agno_does(
    aiohttp_client: Any,
    legacy_jwt_url: str,  # noqa: F811  (the imported fixture)
    pg_dsn: str,
) -> None:
    env = {"AGNO_PG_DSN": pg_dsn, "AGNO_DEFAULT_DB_ID": "main-db", "JWT_VERIFICATION_KEY": PUBLIC_PEM}
    native = await aiohttp_client(create_app(load_settings(env)))
    cases = [
        ({"sub": "u1", "scopes": WRITE}, {"agent_id": "a", "user_id": "someone-else"}),
        ({"sub": "u1", "scopes": WRITE}, {"agent_id": "a"}),
        ({"scopes": WRITE}, {"agent_id": "a", "user_id": "from-body"}),  # no sub: the body's
        ({"sub": "u2", "scopes": ["agent_os:admin"]}, {"agent_id": "a", "user_id": "someone-else"}),
    ]
    differences = []
    async with httpx.AsyncClient(base_url=legacy_jwt_url, timeout=30) as legacy:
        for claims, body in cases:
            tag = uuid.uuid4().hex[:8]
            lid, nid = f"jwt-owner-l-{tag}", f"jwt-owner-n-{tag}"
            headers = bearer(token(**claims))
            lr = await legacy.post("/sessions?type=agent", json={**body, "session_id": lid}, headers=headers)
            nr = await native.post("/sessions?type=agent", json={**body, "session_id": nid}, headers=headers)
            got = (
                nr.status,
                json.loads((await nr.text()).replace(nid, "<id>")).get("user_id"),
                await _owner(pg_dsn, nid),
            )
            want = (lr.status_code, json.loads(lr.text.replace(lid, "<id>")).get("user_id"), await _owner(pg_dsn, lid))
            if got != want:
                differences.append((claims, body, want, got))
    assert differences == []
