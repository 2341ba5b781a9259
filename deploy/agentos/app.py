"""The legacy side of a deployment: a real agno 3.1.10 AgentOS serving /sessions on Postgres.

    AGNO_DB_URL=postgresql+psycopg://agno:agno@postgres:5432/agno \\
        uvicorn app:app --host 0.0.0.0 --port 7777 --app-dir deploy/agentos

It stands in for the AgentOS an operator already runs (docker-compose.session.yml starts it beside
the native service and the gateway). It has no agents: `AgentOS(db=...)` alone is enough for agno
to mount its session router on that database (agno registers the AgentOS db with the agents' ones,
`AgentOS._auto_discover_databases`), so no model and no LLM key are needed to serve /sessions.
Replace it by your own AgentOS on the same database to shadow your real traffic.

Environment:
  AGNO_DB_URL     SQLAlchemy DSN of the sessions database (required), `postgresql+psycopg://...`
  AGNO_DB_ID      the db id clients send as ?db_id= (default `main-db`); give the native service
                  the same one as AGNO_DEFAULT_DB_ID
  AGNO_TELEMETRY  `true` to let agno send its telemetry (off by default here)
  OS_SECURITY_KEY bearer key for every request (read by agno's own settings); empty or unset: open
"""

from __future__ import annotations

import os
from typing import Any

from agno.db.postgres import PostgresDb
from agno.os import AgentOS

OS_ID = "agentos-session-legacy"
DEFAULT_DB_ID = "main-db"


def build_agent_os(db_url: str, db_id: str, telemetry: bool = False) -> AgentOS:
    """An AgentOS whose only component is the sessions database (schema `ai`, agno's tables)."""
    db = PostgresDb(db_url=db_url, id=db_id)
    return AgentOS(
        id=OS_ID,
        description="Legacy agno AgentOS for agentos-session (sessions only)",
        db=db,
        telemetry=telemetry,
    )


def _from_env() -> AgentOS:
    db_url = os.environ.get("AGNO_DB_URL")
    if not db_url:
        # Fail at start-up with the one thing to fix, not at the first request.
        raise SystemExit("AGNO_DB_URL is required (e.g. postgresql+psycopg://agno:agno@postgres:5432/agno)")
    telemetry = os.environ.get("AGNO_TELEMETRY", "false").strip().lower() in ("1", "true", "yes")
    return build_agent_os(db_url, os.environ.get("AGNO_DB_ID") or DEFAULT_DB_ID, telemetry)


agent_os = _from_env()
app: Any = agent_os.get_app()
