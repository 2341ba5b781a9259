"""Where a server's CPU goes per request, by kind of work: py-spy samples sorted into a few bins.

A flame graph answers "which function"; what bounds an endpoint needs "which kind of work":
Postgres round trips, JSONB decoding, agno's shapes, JSON encoding, HTTP, the event loop. Each
py-spy sample (one stack, leaf last) goes to the bin of its innermost frame that a rule below
names; multiplied by the server's CPU µs per request (benchmarks/cpu.py) the shares become µs
per request per bin. py-spy counts only samples of a thread on the CPU (not `--idle`), so the
shares are of the process's CPU time.

Time inside C code (uvloop's epoll and socket writes, orjson, pydantic-core) is charged to the
Python frame that called it: orjson to the JSONB decode, pydantic-core to the encode, uvloop's
own work to `event loop` (its `run_forever` frame).
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

# (bin, substrings of a frame "function (path:line)"), tried in order on each frame, leaf first.
BINS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("JSONB decode", ("decode_jsonb (", "_long_digit_run (", "json/decoder.py", "loads (json/")),
    ("JSON encode", ("render.py:", "json/encoder.py", "dumps (json/")),  # render.py: see _ENCODE
    ("asyncpg", ("asyncpg/",)),
    ("event loop, sockets", ("session_service/serving.py", "asyncio/", "uvloop/", "<frozen runpy>")),
    ("middleware, metrics, logs", ("session_service/middleware.py", "prometheus_client/", "logging/", "/logs.py")),
    ("views, validation, SQL text", ("session_service/", "agentos_session/", "benchmarks/floor.py")),
    ("HTTP (aiohttp)", ("aiohttp/", "multidict/", "yarl/")),
)
# Of session_service/render.py, the functions that write bytes (the rest shape agno's schemas).
_ENCODE = ("dumps (", "dumps_page (", "_dumps_deep (", "dumps_error (")
RENDER = "render (agno's shapes)"
OTHER = "other"


def bin_of(frame: str) -> str | None:
    """The bin one frame names, None when it names none (the caller looks further out)."""
    for name, needles in BINS:
        if not any(n in frame for n in needles):
            continue
        if name == "JSON encode" and "render.py:" in frame:
            return name if frame.startswith(_ENCODE) else RENDER
        return name
    return None


def bin_of_stack(frames: list[str]) -> str:
    for frame in reversed(frames):
        found = bin_of(frame)
        if found is not None:
            return found
    return OTHER


def shares(raw_lines: Iterable[str]) -> dict[str, float]:
    """py-spy `--format raw` lines ("frame;frame;...;leaf count") as shares of the samples per bin."""
    counts: Counter[str] = Counter()
    for line in raw_lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack or not count.isdigit():
            continue
        counts[bin_of_stack(stack.split(";"))] += int(count)
    total = sum(counts.values())
    return {name: n / total for name, n in counts.most_common()} if total else {}


def py_spy() -> str | None:
    """The py-spy next to this interpreter (the `bench` extra installs it), else on PATH."""
    import sys

    local = Path(sys.executable).with_name("py-spy")
    return str(local) if local.exists() else shutil.which("py-spy")


def record(pid: int, seconds: float, out: Path, rate: int = 200) -> subprocess.Popen[bytes]:
    """Start py-spy on `pid` for `seconds` (raw format to `out`); the caller drives load meanwhile
    and waits for the returned process. Non-blocking sampling: the server is never paused."""
    exe = py_spy()
    if exe is None:
        raise RuntimeError("py-spy is not installed (pip install py-spy)")
    argv = [exe, "record", "--pid", str(pid), "-d", str(seconds), "-r", str(rate), "--nonblocking"]
    argv += ["-f", "raw", "-o", str(out)]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
