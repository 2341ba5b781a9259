"""The real agno AgentOS of tests/reliability/agentos_jwt_app.py with audience verification on:
`authorization=True` and `AuthorizationConfig(verify_audience=True, audience=$JWT_TEST_AUDIENCE)`
(agno sets the audience in code only). Run as `uvicorn tests.reliability.agentos_jwt_audience_app:app`."""

from __future__ import annotations

import os
from typing import Any

from agno.os import AgentOS
from agno.os.config import AuthorizationConfig

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
                authorization_config=AuthorizationConfig(
                    verify_audience=True, audience=os.environ["JWT_TEST_AUDIENCE"]
                ),
            )
            _app = agent_os.get_app()
        return _app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
