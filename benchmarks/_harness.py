"""The one door from the benchmark suite to the test harness.

The suite needs the same real parts the tests use (embedded Postgres, the fake OpenAI server,
the seed written by the real agno runtime, AgentOS under uvicorn, the native service and the
gateway as processes). They live under `tests/` today; when the harness moves to a top-level
package, only the imports below change.
"""

from __future__ import annotations

from tests.conftest import NativeProcess
from tests.legacy.fake_openai import start_fake_openai
from tests.legacy.fixtures import REPO_ROOT, AgentOSProcess, PgServer, create_database, free_port
from tests.legacy.seed import BASE_TS, SESSION_ORDER, seed
from tests.shadow.conftest import reset_gateway_tables
from tests.shadow.process import start_process, stop

__all__ = [
    "BASE_TS",
    "REPO_ROOT",
    "SESSION_ORDER",
    "AgentOSProcess",
    "NativeProcess",
    "PgServer",
    "create_database",
    "free_port",
    "reset_gateway_tables",
    "seed",
    "start_fake_openai",
    "start_process",
    "stop",
]
