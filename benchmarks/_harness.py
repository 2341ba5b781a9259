"""The one door from the benchmark suite to the test harness.

The suite needs the same real parts the tests use (embedded Postgres, the fake OpenAI server,
the seed written by the real agno runtime, AgentOS under uvicorn, the native service and the
gateway as processes). They live in the top-level `harness/` package (not shipped); this module names what the suite
uses of it.
"""

from __future__ import annotations

from harness.fake_openai import start_fake_openai
from harness.postgres import PgServer, create_database
from harness.processes import REPO as REPO_ROOT
from harness.processes import free_port, stop
from harness.seed import BASE_TS, SESSION_ORDER, seed
from harness.services import reset_gateway_tables, start_process
from harness.services import start_legacy as AgentOSProcess
from harness.services import start_native as NativeProcess

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
