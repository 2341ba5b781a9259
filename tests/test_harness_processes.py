"""The one process starter of the tests, benchmarks and demo (harness.processes), on real child
processes: ready on a URL's 200, a failed start said with the log's end, a bounded wait, TERM then
KILL, and another port only when the bind failed."""

from __future__ import annotations

import signal
import socket
import sys
import time
from pathlib import Path

import pytest

from harness.processes import environ, http_status, start, start_on_free_port

PYTHON = sys.executable


def http_server(port: int) -> list[str]:
    return [PYTHON, "-m", "http.server", str(port), "--bind", "127.0.0.1"]


def test_ready_once_the_url_answers_200_and_stopped_by_term(tmp_path: Path) -> None:
    process = start_on_free_port(
        lambda port: (http_server(port), environ()), ready_path="/", log_path=tmp_path / "http.log"
    )
    try:
        assert http_status(process.url + "/") == 200
    finally:
        process.stop()
    assert not process.running and process.popen.returncode == -signal.SIGTERM
    assert http_status(process.url + "/") == 0  # nothing answers any more


def test_a_process_that_exits_fails_at_once_with_its_log(tmp_path: Path) -> None:
    script = "import sys; print('cannot start: no config', flush=True); sys.exit(3)"
    began = time.monotonic()
    with pytest.raises(RuntimeError) as failed:
        start([PYTHON, "-c", script], env=environ(), log_path=tmp_path / "x.log", ready="http://127.0.0.1:1/")
    assert "exited with code 3" in str(failed.value) and "cannot start: no config" in str(failed.value)
    assert time.monotonic() - began < 20  # not the whole start-up timeout


def test_the_wait_is_bounded_and_the_process_stopped(tmp_path: Path) -> None:
    script = "import time; print('starting', flush=True); time.sleep(60)"
    with pytest.raises(RuntimeError, match=r"not ready \(never\) within 1 s") as failed:

        def never() -> bool:
            return False

        start([PYTHON, "-c", script], env=environ(), log_path=tmp_path / "slow.log", ready=never, timeout_s=1)
    assert "starting" in str(failed.value)


def test_stop_kills_what_ignores_term(tmp_path: Path) -> None:
    script = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
    )
    log = tmp_path / "stubborn.log"
    process = start([PYTHON, "-c", script], env=environ(), log_path=log, ready=lambda: "up" in log.read_text())
    process.stop(timeout_s=0.5)
    assert process.popen.returncode == -signal.SIGKILL


def test_another_port_only_when_the_bind_failed(tmp_path: Path) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    ports: list[int] = []

    def command(port: int) -> tuple[list[str], dict[str, str]]:
        ports.append(port)
        # The first attempt binds the port another process holds, as if it was taken in between.
        return http_server(taken.getsockname()[1] if len(ports) == 1 else port), environ()

    try:
        process = start_on_free_port(command, ready_path="/", log_path=tmp_path / "retry.log", timeout_s=30)
    finally:
        taken.close()
    try:
        assert len(ports) == 2 and process.url == f"http://127.0.0.1:{ports[1]}"
        assert "address already in use" in process.output().lower()  # the first attempt's end, kept
    finally:
        process.stop()


def test_any_other_failure_is_not_retried(tmp_path: Path) -> None:
    calls: list[int] = []

    def command(port: int) -> tuple[list[str], dict[str, str]]:
        calls.append(port)
        return [PYTHON, "-c", "raise SystemExit('bad config')"], environ()

    with pytest.raises(RuntimeError, match="bad config"):
        start_on_free_port(command, ready_path="/", log_path=tmp_path / "bad.log")
    assert len(calls) == 1


def test_environ_scrubs_then_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGNO_PG_DSN", "postgresql://from-the-shell")
    monkeypatch.setenv("KEEP_ME", "1")
    env = environ({"OS_SECURITY_KEY": "k"}, scrub=("AGNO_PG_DSN", "OS_SECURITY_KEY"))
    assert "AGNO_PG_DSN" not in env and env["KEEP_ME"] == "1" and env["OS_SECURITY_KEY"] == "k"
