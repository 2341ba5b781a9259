"""The project's three servers as child processes, for the tests, the benchmarks and `make demo`:
the legacy side (the real agno AgentOS of `harness.agentos_app` under uvicorn), the native
service (`python -m session_service serve`) and the gateway (`agentos-session gateway`).

Each is started by `harness.processes` on 127.0.0.1, with the settings of the developer's shell
that would change it scrubbed from its environment, and returned once it is ready.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from harness.postgres import libpq_dsn, sqlalchemy_url
from harness.processes import REPO, START_TIMEOUT_S, Process, environ, start, start_on_free_port, temp_log

# Env vars that would change the AgentOS under test if inherited from the developer's shell.
LEGACY_SCRUBBED = (
    "OS_SECURITY_KEY",
    "JWT_VERIFICATION_KEY",
    "JWT_JWKS_FILE",
    "AGNO_SECOND_DB_URL",
    "AGNO_DB_URL",
    "FAKE_OPENAI_URL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
)
# ...and the native service's own (its database and key come from the caller only).
NATIVE_SCRUBBED = ("OS_SECURITY_KEY", "AGNO_PG_DSN", "DATABASE_URL", "AGNO_SESSION_DSN_MAP", "AGNO_DEFAULT_DB_ID")

GATEWAY_COMMAND = (
    sys.executable,
    "-m",
    "agentos_session.cli",
    "gateway",
    "--config",
    str(REPO / "config" / "gateway.yaml"),
)


def start_legacy(
    db_url: str,
    openai_url: str,
    *,
    second_db_url: str | None = None,
    security_key: str | None = None,
    timeout_s: float = START_TIMEOUT_S,
    name: str = "agentos",
    app: str = "harness.agentos_app:app",
    extra_env: Mapping[str, str] | None = None,
) -> Process:
    """`python -m uvicorn <app>` (the harness's AgentOS by default; another module builds one
    configured otherwise, e.g. in agno's JWT mode) on a free port, ready once agno's `/health`
    answers 200 (it is open whatever the security key). `db_url` in either DSN spelling;
    `extra_env` is added last (e.g. `JWT_VERIFICATION_KEY`)."""
    overrides = {
        "AGNO_DB_URL": sqlalchemy_url(libpq_dsn(db_url)),
        "FAKE_OPENAI_URL": openai_url,
        "AGNO_TELEMETRY": "false",
        "PYTHONUNBUFFERED": "1",
        # cwd is the repo root, but `python -m uvicorn` puts the cwd on sys.path only as ''.
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p),
        "NO_PROXY": "127.0.0.1,localhost",
    }
    if second_db_url:
        overrides["AGNO_SECOND_DB_URL"] = sqlalchemy_url(libpq_dsn(second_db_url))
    if security_key:
        overrides["OS_SECURITY_KEY"] = security_key
    overrides.update(extra_env or {})
    env = environ(overrides, scrub=LEGACY_SCRUBBED)

    def command(port: int) -> tuple[list[str], dict[str, str]]:
        argv = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1"]
        return [*argv, "--port", str(port), "--no-access-log", "--log-level", "warning"], env

    return start_on_free_port(command, ready_path="/health", log_path=temp_log(name), name=name, timeout_s=timeout_s)


def start_native(env: Mapping[str, str], name: str = "native", timeout_s: float = START_TIMEOUT_S) -> Process:
    """`python -m session_service serve` on a free port with `env` (its database, key, ...),
    ready once `/healthz` answers 200 (which needs its database)."""
    full_env = environ({**env, "PYTHONUNBUFFERED": "1"}, scrub=NATIVE_SCRUBBED)

    def command(port: int) -> tuple[list[str], dict[str, str]]:
        return [sys.executable, "-m", "session_service", "serve", "--host", "127.0.0.1", "--port", str(port)], full_env

    return start_on_free_port(command, ready_path="/healthz", log_path=temp_log(name), name=name, timeout_s=timeout_s)


def gateway_env(pg_dsn: str, legacy_url: str, port: int, stage: str) -> dict[str, str]:
    """The environment of a gateway process on 127.0.0.1:`port` in front of `legacy_url`, with
    the native side in-process on `pg_dsn` (db id main-db, as the test AgentOS) and every group
    starting at `stage` (callers reset the stored stages first: a stored stage wins)."""
    return {
        "AGNO_PG_DSN": pg_dsn,
        "AGNO_DEFAULT_DB_ID": "main-db",
        "AGNO_LEGACY_URL": legacy_url,
        "AGNO_GATEWAY_HOST": "127.0.0.1",
        "AGNO_GATEWAY_PORT": str(port),
        "AGNO_GATEWAY_STAGE": stage,
    }


def start_gateway(
    port: int,
    env: Mapping[str, str],
    log_path: Path,
    argv: Sequence[str] = GATEWAY_COMMAND,
    timeout_s: float = START_TIMEOUT_S,
) -> Process:
    """`argv` (the gateway by default) with `env` over this environment, ready once `/healthz`
    on `port` answers 200 (the port is the caller's: it is in `env` or `argv`)."""
    url = f"http://127.0.0.1:{port}"
    name = f"{Path(argv[-1]).name} on :{port}"
    process = start(argv, env=environ(env), log_path=log_path, ready=url + "/healthz", name=name, timeout_s=timeout_s)
    process.url = url
    return process


def start_process(
    port: int,
    env: Mapping[str, str],
    log_path: Path,
    args: Sequence[str] = GATEWAY_COMMAND,
    timeout_s: float = START_TIMEOUT_S,
) -> subprocess.Popen[bytes]:
    """`start_gateway()` answering the bare Popen, for the callers that hold one (and give it to
    `harness.processes.stop`)."""
    return start_gateway(port, env, log_path, args, timeout_s).popen


async def reset_gateway_tables(dsn: str) -> None:
    """Drop the gateway's tables: they are shared by every replica, so a run that must not see
    the stages or samples of an earlier one starts from none."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "DROP TABLE IF EXISTS shadow_mismatches, shadow_rollout, shadow_rollout_events, shadow_gate_counts, "
            "shadow_route_counts, shadow_latency_counts"
        )
    finally:
        await conn.close()
