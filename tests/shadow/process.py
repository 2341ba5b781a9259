"""A gateway (or service) as its own process: the way `make demo`, the gateway benchmark and
the run tests start it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
GATEWAY_COMMAND = (
    sys.executable,
    "-m",
    "agentos_session.cli",
    "gateway",
    "--config",
    str(REPO / "config" / "gateway.yaml"),
)


def start_process(
    port: int, env: dict[str, str], log_path: Path, args: Sequence[str] = GATEWAY_COMMAND, timeout_s: float = 60.0
) -> subprocess.Popen[bytes]:
    """Start `args` with `env` over this environment, output to `log_path`, and wait until
    `/healthz` on `port` answers 200. RuntimeError (with the log's end) if it never does."""
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(list(args), cwd=REPO, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    stop(proc)
    raise RuntimeError(
        f"{args[-1]} did not start on :{port}; log {log_path}:\n{log_path.read_text(errors='replace')[-3000:]}"
    )


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
