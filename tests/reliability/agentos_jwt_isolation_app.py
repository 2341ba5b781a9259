"""The real agno AgentOS of tests/reliability/agentos_jwt_app.py with per-user isolation on:
`authorization=True` and `user_isolation=True` (agno sets it in code only).
Run as `uvicorn tests.reliability.agentos_jwt_isolation_app:app`."""

from __future__ import annotations

import os
from typing import Any

from agno.os import AgentOS

from harness.agentos_app import OS_ID, build_components

_app: Any = None


def __getattr__(name: str) -> Any:
    """`app` is built from the environment on first access (for uvicorn)."""
    global _app
    if name == "app":
        if _app is None:
            c = build_components(os.environ["AGNO_DB_URL"], os.environ["FAKE_OPENAI_URL"])
            agent_os = AgentOS(
                id=OS_ID,
                agents=[c["agent"]],
                teams=[c["team"]],
                workflows=[c["workflow"]],
                telemetry=False,
                authorization=True,
                user_isolation=True,
            )
            _app = agent_os.get_app()
        return _app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
