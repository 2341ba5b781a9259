"""The real agno AgentOS of harness/agentos_app.py in agno's JWT mode: `authorization=True`,
verifying with `JWT_VERIFICATION_KEY` (an RSA public key, RS256: agno's default algorithm) or
`JWT_JWKS_FILE` from the environment. Run as `uvicorn tests.reliability.agentos_jwt_app:app`.

Two options agno sets in code only, taken here from the environment so that one module serves
every JWT test: `JWT_TEST_AUDIENCE` (`AuthorizationConfig(verify_audience=True, audience=...)`)
and `JWT_TEST_USER_ISOLATION=true` (`AgentOS(user_isolation=True)`)."""

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
            options: dict[str, Any] = {}
            if os.environ.get("JWT_TEST_AUDIENCE"):
                options["authorization_config"] = AuthorizationConfig(
                    verify_audience=True, audience=os.environ["JWT_TEST_AUDIENCE"]
                )
            if os.environ.get("JWT_TEST_USER_ISOLATION") == "true":
                options["user_isolation"] = True
            agent_os = AgentOS(
                id=OS_ID,
                agents=[c["agent"]],
                teams=[c["team"]],
                workflows=[c["workflow"]],
                telemetry=False,
                authorization=True,
                **options,
            )
            _app = agent_os.get_app()
        return _app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
