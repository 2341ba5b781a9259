"""`GET /openapi.json` of the native service is agno's document for the same routes: the
operations of every /sessions route it serves and the components they reference, byte for byte
as a real AgentOS (the legacy process) sends that subset. And the service serves it without
importing agno."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import httpx

from agentos_session.sessions_api import SESSION_ROUTES
from session_service.app import create_app
from session_service.config import load_settings
from session_service.openapi import sessions_subset
from tests.reliability.conftest import REPO_ROOT


def compact(document: Any) -> bytes:
    """FastAPI's JSONResponse rendering."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


async def test_the_document_is_agnos_for_the_served_routes(aiohttp_client: Any, legacy_url: str, pg_dsn: str) -> None:
    agno = httpx.get(legacy_url + "/openapi.json", timeout=30)
    assert agno.status_code == 200
    expected = sessions_subset(agno.json())
    settings = load_settings({"AGNO_PG_DSN": pg_dsn, "AGNO_DEFAULT_DB_ID": "main-db", "OS_SECURITY_KEY": "k"})
    client = await aiohttp_client(create_app(settings))
    resp = await client.get("/openapi.json")  # open even with a key, as in AgentOS
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("application/json")
    body = await resp.read()
    assert json.loads(body) == expected
    assert body == compact(expected)
    # Every served route is documented, with agno's operation for it; nothing else is.
    served = {(r.template, r.method.lower()) for r in SESSION_ROUTES}
    documented = {(p, m) for p, ops in json.loads(body)["paths"].items() for m in ops}
    assert documented == served
    for template, method in served:
        assert json.loads(body)["paths"][template][method] == agno.json()["paths"][template][method]
    # Every $ref resolves inside the served document.
    text = body.decode()
    for name in json.loads(body)["components"]["schemas"]:
        assert f'"#/components/schemas/{name}"' in text


def test_the_service_serves_it_without_agno(pg_dsn: str) -> None:
    probe = (
        "import sys, asyncio\n"
        "from session_service.app import create_app\n"
        "from session_service.openapi import document_bytes\n"
        "assert document_bytes().startswith(b'{\"openapi\":')\n"
        "print(sorted(m for m in sys.modules if m == 'agno' or m.startswith('agno.')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
