"""No secret outlives its request: a gateway with a recording on, mismatches stored, every
logger at DEBUG, in front of a native service with `OS_SECURITY_KEY` and a diverging legacy,
gets requests carrying an Authorization value, cookies, an API key header and a body value at a
configured secret path (`store.redact_paths`), its store DSN holding a password. Then every
stored sample (`shadow_mismatches`, read back raw from Postgres), the recording file and every
log line written during the test are searched for each secret: none is found.

The test also checks that the secrets did travel (the requests were answered 200 through the
key-protected native side, samples were stored, the recording has lines, the logs are not
empty), so a run that stored and logged nothing cannot pass by accident.
"""

from __future__ import annotations

import io
import logging
import secrets
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg
from aiohttp.test_utils import TestClient, TestServer

from agentos_session.logs import JsonLogFormatter
from harness.services import reset_gateway_tables
from session_service.config import load_settings
from shadow_proxy.app import create_app
from shadow_proxy.config import Shadow, Store
from tests.shadow.conftest import gateway_config
from tests.shadow.faults import FaultyLegacy
from tests.shadow.test_gateway import at_stage, metric, settled


def with_password(dsn: str, password: str) -> str:
    """The DSN with a password in it (the embedded Postgres trusts local connections, so the
    password is carried and never checked: it only has to be kept secret)."""
    parts = urlsplit(dsn)
    user = parts.username or "postgres"
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    netloc = f"{user}:{password}@{host}{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


async def test_no_secret_in_samples_recordings_or_logs(
    pg_dsn: str, seeded: None, legacy_url: str, tmp_path: Path
) -> None:
    tag = secrets.token_hex(6)
    key = f"os-key-{tag}"  # the native service's OS_SECURITY_KEY, sent as the Bearer value
    found = {
        "authorization": key,
        "cookie": f"cookie-{tag}",
        "api key": f"apikey-{tag}",
        "dsn password": f"dsnpw-{tag}",
        "body secret": f"state-secret-{tag}",
    }
    headers = {
        "Authorization": f"Bearer {key}",
        "Cookie": f"sid={found['cookie']}; theme=dark",
        "X-Api-Key": found["api key"],
    }
    recording = tmp_path / "recording.jsonl"
    log_text = io.StringIO()
    handler = logging.StreamHandler(log_text)
    handler.setFormatter(JsonLogFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    await reset_gateway_tables(pg_dsn)
    session_id = f"secret-{uuid.uuid4().hex[:8]}"
    client: TestClient | None = None
    try:
        async with FaultyLegacy(legacy_url) as legacy:
            legacy.mode = "mutate"  # a diverging legacy: every answer with a session_name differs
            config = at_stage(
                gateway_config(
                    legacy.url,
                    shadow=Shadow(timeout_s=5.0, record=str(recording), mirror_writes=True),
                    store=Store(dsn=with_password(pg_dsn, found["dsn password"]), redact_paths=("**.api_token",)),
                ),
                "shadow",
            )
            settings = load_settings({"AGNO_PG_DSN": pg_dsn, "AGNO_DEFAULT_DB_ID": "main-db", "OS_SECURITY_KEY": key})
            client = TestClient(TestServer(create_app(config, native_settings=settings)))
            await client.start_server()

            async with aiohttp.ClientSession() as direct:  # the session to update, created on legacy itself
                async with direct.post(legacy_url + "/sessions", json={"session_id": session_id}) as r:
                    assert r.status == 201
            body = {"session_state": {"api_token": found["body secret"], "plain": "visible"}}
            r = await client.patch(f"/sessions/{session_id}", json=body, headers=headers)
            assert r.status == 200, await r.text()
            for target in (f"/sessions/{session_id}", "/sessions?type=agent", f"/sessions/{session_id}/runs"):
                r = await client.get(target, headers=headers)
                assert r.status == 200, await r.text()
            await settled(client)
            # The key-protected native side answered the mirrored copies (not 401s).
            native_ok = {
                "route": "GET /sessions/{session_id}",
                "stage": "shadow",
                "side": "native",
                "code_class": "2xx",
            }
            assert metric(client, "shadow_requests_total", **native_ok) >= 1
    finally:
        if client is not None:
            await client.close()
        root.removeHandler(handler)
        root.setLevel(old_level)
        async with aiohttp.ClientSession() as direct, direct.delete(legacy_url + f"/sessions/{session_id}") as r:
            assert r.status in (204, 404)  # the test's session gone: other tests list sessions

    conn = await asyncpg.connect(pg_dsn)
    try:
        rows = [str(dict(row)) for row in await conn.fetch("SELECT * FROM shadow_mismatches")]
    finally:
        await conn.close()
    assert rows, "no mismatch sample was stored"
    assert any("<redacted>" in row for row in rows) and any("visible" in row for row in rows)
    lines = recording.read_text().splitlines()
    assert len(lines) >= 3, "the recording has the mirrored requests"
    logs = log_text.getvalue().splitlines()
    assert len(logs) >= 5 and any('"shadow_proxy.access"' in line for line in logs)

    for what, secret in found.items():
        leaks = {
            "stored samples": sum(secret in row for row in rows),
            "recording": sum(secret in line for line in lines),
            "logs": [line for line in logs if secret in line][:3],
        }
        assert not any(leaks.values()), f"the {what} leaked: {leaks}"
