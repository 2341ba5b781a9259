"""wrk as the suite's load generator, pinned away from the server, and what a server process cost.

wrk (from Debian) is a closed-loop generator in C with LuaJIT scripts: one thread drives tens of
thousands of requests per second, so on two cores it can own one core while the server under test
owns the other (`taskset`). Its figures come back through `wrk/report.lua` as one JSON line.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

LUA_DIR = Path(__file__).resolve().parent / "wrk"
READ_SCRIPT = LUA_DIR / "read.lua"
WRITE_SCRIPT = LUA_DIR / "write.lua"
MARK = "BENCH_JSON "


@dataclass(frozen=True)
class Cores:
    """Where the generator and the servers run. On one core both share it (said in the report)."""

    generator: str
    server: str

    @staticmethod
    def split() -> Cores:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            return Cores(str(cpus[0]), str(cpus[0]))
        return Cores(str(cpus[0]), ",".join(str(c) for c in cpus[1:]))


@dataclass
class WrkResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "error_count": self.error_count}


class WrkError(RuntimeError):
    pass


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def parse_report(stdout: str) -> WrkResult:
    """The `BENCH_JSON` line of `wrk/report.lua` as a result (WrkError when it is missing)."""
    for line in stdout.splitlines():
        if line.startswith(MARK):
            raw = json.loads(line[len(MARK) :])
            seconds = raw["duration_us"] / 1e6
            return WrkResult(
                requests=raw["requests"],
                seconds=seconds,
                rps=raw["requests"] / seconds if seconds else 0.0,
                p50_ms=raw["p50_us"] / 1e3,
                p90_ms=raw["p90_us"] / 1e3,
                p99_ms=raw["p99_us"] / 1e3,
                max_ms=raw["max_us"] / 1e3,
                errors=dict(raw["errors"]),
            )
    raise WrkError(f"no {MARK.strip()} line in wrk's output:\n{stdout[-2000:]}")


def wrk_command(
    url: str,
    seconds: float,
    *,
    connections: int,
    threads: int = 1,
    script: Path = READ_SCRIPT,
    script_args: Sequence[str] = (),
    cpus: str | None = None,
    timeout_s: float = 5.0,
) -> list[str]:
    cmd = ["taskset", "-c", cpus] if cpus is not None and shutil.which("taskset") else []
    cmd += [
        "wrk",
        f"-t{threads}",
        f"-c{max(connections, threads)}",
        f"-d{max(1, round(seconds))}s",  # wrk takes whole seconds
        f"--timeout={timeout_s:g}s",
        "-s",
        str(script),
        url,
    ]
    if script_args:
        cmd += ["--", *script_args]
    return cmd


def run_wrk(url: str, seconds: float, **options: Any) -> WrkResult:
    """One closed-loop wrk run of `seconds` against `url`; `options` are `wrk_command`'s
    (connections, threads, script, script_args, cpus, timeout_s)."""
    cmd = wrk_command(url, seconds, **options)
    env = {**os.environ, "BENCH_LUA_DIR": str(LUA_DIR)}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=seconds + 60, check=False)
    if done.returncode != 0:
        raise WrkError(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout[-1500:]}\n{done.stderr[-1500:]}")
    return parse_report(done.stdout)


# ---- the server process -------------------------------------------------------------------------


def pin(pid: int, cpus: str) -> None:
    """Every thread of `pid` onto `cpus` (threads made later inherit it)."""
    if shutil.which("taskset"):
        subprocess.run(["taskset", "-a", "-p", "-c", cpus, str(pid)], capture_output=True, check=False)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` and its threads so far (from /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def settle(pid: int, timeout_s: float = 60.0, step_s: float = 0.1, idle_share: float = 0.05) -> float:
    """Wait until `pid` is idle (under `idle_share` of a core over `step_s`); seconds waited.

    When wrk stops, a slow server still works through the requests it had accepted; the next
    server's round must not pay for that on the shared core."""
    waited, last = 0.0, cpu_seconds(pid)
    while waited < timeout_s:
        time.sleep(step_s)
        waited += step_s
        now = cpu_seconds(pid)
        if now - last < idle_share * step_s:
            return waited
        last = now
    return waited


def reset_peak_rss(pid: int) -> bool:
    """Restart the kernel's peak-RSS counter (VmHWM) of `pid`; False where it is not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mib(pid: int) -> float:
    """VmHWM of `pid`: the most resident memory since start or since `reset_peak_rss`."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")
