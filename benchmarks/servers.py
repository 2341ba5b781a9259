"""The processes under test, on one seeded database: AgentOS, native service, floor, gateways.

Each is its own process with a pid, so the suite can pin it to the server core and read its
peak RSS. The gateways get a config file of their own (the shipped one with the gate off, so
no promotion or rollback changes the stage mid-run) and a store database of their own, so
several can run side by side at different stages and be measured in alternating rounds.
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import _harness
from .loadgen import pin


@dataclass
class Server:
    name: str
    url: str
    pid: int
    stop: Any = field(repr=False)


def start_legacy(dsn: str, openai_url: str) -> Server:
    proc = _harness.AgentOSProcess(dsn, openai_url, name="bench-legacy")
    return Server("legacy", proc.url, proc.pid, proc.stop)


def start_native(dsn: str) -> Server:
    proc = _harness.NativeProcess(
        {"AGNO_PG_DSN": dsn, "AGNO_DEFAULT_DB_ID": "main-db", "AGNO_LOG_LEVEL": "WARNING"}, "bench-native"
    )
    return Server("native", proc.url, proc.pid, proc.stop)


def start_floor(dsn: str, log_dir: Path) -> Server:
    port = _harness.free_port()
    args = [sys.executable, "-m", "benchmarks.floor", "--dsn", dsn, "--port", str(port)]
    proc = _harness.start_process(port, {}, log_dir / "floor.log", args=args)
    return Server("floor", f"http://127.0.0.1:{port}", proc.pid, lambda: _harness.stop(proc))


def gateway_config_file(directory: Path) -> Path:
    """The shipped gateway.yaml with the gate off and the shipped rules by absolute path."""
    config = yaml.safe_load((_harness.REPO_ROOT / "config" / "gateway.yaml").read_text())
    config["gate"]["enabled"] = False
    config["rules"] = str(_harness.REPO_ROOT / "config" / "comparator.yaml")
    path = directory / "gateway-bench.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def create_store_database(admin_dsn: str, name: str) -> str:
    """An empty database on the same server for one gateway's store (stages, samples)."""
    return _harness.create_database(admin_dsn, name)


def start_gateway(
    name: str, dsn: str, store_dsn: str, legacy_url: str, stage: str, sample_rate: float, log_dir: Path
) -> Server:
    port = _harness.free_port()
    config = gateway_config_file(log_dir)
    env = {
        "AGNO_PG_DSN": dsn,
        "AGNO_DEFAULT_DB_ID": "main-db",
        "AGNO_LEGACY_URL": legacy_url,
        "AGNO_GATEWAY_PORT": str(port),
        "AGNO_GATEWAY_HOST": "127.0.0.1",
        "AGNO_GATEWAY_STAGE": stage,
        "AGNO_GATEWAY_SAMPLE_RATE": str(sample_rate),
        "AGNO_GATEWAY_STORE_DSN": store_dsn,
        "AGNO_LOG_LEVEL": "WARNING",
    }
    args = [sys.executable, "-m", "agentos_session.cli", "gateway", "--config", str(config)]
    proc = _harness.start_process(port, env, log_dir / f"{name}.log", args=args)
    return Server(name, f"http://127.0.0.1:{port}", proc.pid, lambda: _harness.stop(proc))


def pin_all(servers: list[Server], cpus: str) -> None:
    for server in servers:
        pin(server.pid, cpus)


def log_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="bench-suite-"))
