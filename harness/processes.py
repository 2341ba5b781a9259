"""The one way the tests, benchmarks and the demo run a server as a child process.

`start()` runs a command with an environment, sends its output to a file (a pipe nobody reads
would fill up and block the server), and waits until it is ready: a URL that answers 200, or any
check given as a function. `Process.stop()` sends TERM, waits, then KILLs. `start_on_free_port()`
picks a free port and tries again when another process took it between the pick and the bind.

Every wait is bounded by a deadline and gives up as soon as the process has exited, with the end
of its log in the error, so a server that cannot start fails its test quickly and says why.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 60.0
LOG_TAIL = 3000  # characters of a log shown in an error: enough for a traceback

Ready = str | Callable[[], bool] | None  # a URL that must answer 200, a check, or no wait


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (another process may still take it: see
    `start_on_free_port`)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_status(url: str, timeout_s: float = 2.0) -> int:
    """The status a GET of `url` answers, 0 when nothing answers (refused, reset, timed out)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            resp.read()
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError):  # ConnectionError and TimeoutError are OSErrors
        return 0


def environ(overrides: Mapping[str, str] = {}, *, scrub: Iterable[str] = ()) -> dict[str, str]:  # noqa: B006 - read only
    """This process's environment without the `scrub` names (settings of the developer's shell
    that would change the server under test), with `overrides` on top."""
    dropped = set(scrub)
    return {**{k: v for k, v in os.environ.items() if k not in dropped}, **overrides}


class Process:
    """A started child process, the file its output goes to, and the base URL it serves (if any)."""

    def __init__(self, popen: subprocess.Popen[bytes], log_path: Path, name: str, url: str = "") -> None:
        self.popen = popen
        self.log_path = log_path
        self.name = name
        self.url = url

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def running(self) -> bool:
        return self.popen.poll() is None

    def output(self, tail: int | None = None) -> str:
        """What the process wrote so far (its last `tail` characters if given)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return text[-tail:] if tail else text

    def wait_ready(self, ready: Ready, timeout_s: float = START_TIMEOUT_S, interval_s: float = 0.1) -> None:
        """Return once `ready` holds; RuntimeError with the log's end if the process exits first
        or the deadline passes. The process is left running either way (the caller stops it)."""
        if ready is None:
            return
        check = ready if callable(ready) else _answers_200(ready)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.running:
                raise RuntimeError(
                    f"{self.name} exited with code {self.popen.returncode}; log {self.log_path}:\n{self.output(LOG_TAIL)}"
                )
            if check():
                return
            time.sleep(interval_s)
        what = ready if isinstance(ready, str) else getattr(ready, "__name__", "its readiness check")
        raise RuntimeError(
            f"{self.name} not ready ({what}) within {timeout_s:.0f} s; log {self.log_path}:\n{self.output(LOG_TAIL)}"
        )

    def stop(self, timeout_s: float = 15.0) -> None:
        """TERM, then KILL if it has not exited within `timeout_s`; a no-op once it has exited."""
        if not self.running:
            return
        self.popen.terminate()
        try:
            self.popen.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=10)

    def close(self) -> None:
        """`stop()` and delete the log (for a run that went well: nothing to look at)."""
        self.stop()
        self.log_path.unlink(missing_ok=True)


def _answers_200(url: str) -> Callable[[], bool]:
    return lambda: http_status(url) == 200


def temp_log(name: str) -> Path:
    """A new empty log file in the temp dir, named after the process (kept when a test fails)."""
    fd, path = tempfile.mkstemp(prefix=f"{name}-", suffix=".log")
    os.close(fd)
    return Path(path)


def spawn(
    argv: Sequence[str], *, env: Mapping[str, str], log_path: Path, cwd: Path = REPO, name: str | None = None
) -> Process:
    """Start `argv` with exactly `env` (build it with `environ()`), output appended to `log_path`,
    stdin closed; no wait."""
    with open(log_path, "ab") as log:
        popen = subprocess.Popen(
            list(argv), cwd=cwd, env=dict(env), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    return Process(popen, log_path, name or Path(argv[0]).name)


def start(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    log_path: Path,
    ready: Ready,
    cwd: Path = REPO,
    name: str | None = None,
    timeout_s: float = START_TIMEOUT_S,
) -> Process:
    """`spawn()` and `wait_ready()`; a process that never gets ready is stopped before the error."""
    process = spawn(argv, env=env, log_path=log_path, cwd=cwd, name=name)
    try:
        process.wait_ready(ready, timeout_s)
    except BaseException:
        process.stop()
        raise
    return process


def start_on_free_port(
    command: Callable[[int], tuple[Sequence[str], Mapping[str, str]]],
    *,
    ready_path: str,
    log_path: Path,
    cwd: Path = REPO,
    name: str | None = None,
    timeout_s: float = START_TIMEOUT_S,
    attempts: int = 3,
) -> Process:
    """Start `command(port)` (its argv and env) on a free port and wait until `ready_path` answers
    200 there; the process's `url` is then its base URL. Another port is tried only when the bind
    failed (taken between `free_port()` and the server's bind); any other failure is raised."""
    for attempt in range(attempts):
        port = free_port()
        argv, env = command(port)
        base = f"http://127.0.0.1:{port}"
        try:
            process = start(
                argv, env=env, log_path=log_path, ready=base + ready_path, cwd=cwd, name=name, timeout_s=timeout_s
            )
        except RuntimeError as exc:
            if "address already in use" not in str(exc).lower() or attempt == attempts - 1:
                raise
        else:
            process.url = base
            return process
    raise AssertionError("unreachable: the last attempt raises")


def stop(process: Process | subprocess.Popen[bytes] | None, timeout_s: float = 15.0) -> None:
    """Stop a `Process` (or a bare Popen, as older callers hold), TERM then KILL; None is a no-op."""
    if isinstance(process, subprocess.Popen):
        process = Process(process, Path(os.devnull), "process")
    if process is not None:
        process.stop(timeout_s)
