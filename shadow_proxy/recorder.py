"""Recording sampled requests to a JSONL file, so `agentos-session replay` can send them to
both sides again later (after a fix, or against a new build) without live traffic.

One line per request: `{"at": epoch, "request_id": ..., "route": template, "request":
Request.to_dict()}`. Credentials are not written: the values of the headers named in
`redact_headers` become `"<redacted>"`, and replay gives them back with `-H`.

The gateway's background mirror worker calls `Recorder.write` synchronously, one request at a
time, so it is kept cheap (one `json.dumps`, one line-buffered `write`) and never raises: a
recording is a diagnostic aid and must not stop mirroring. Failures are counted instead
(`errors`), as are requests refused once the file reached `max_bytes` (`dropped`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

from comparator import Request

from .redact import REDACTED

DEFAULT_REDACTED_HEADERS = ("authorization", "cookie")


class Recorder:
    """Appends one JSON line per sampled request to `path` until the file holds `max_bytes`.

    The file is opened on the first `write` (so a bad path shows up as counted errors, not as a
    gateway that fails to start) and appended to if it exists. The cut-off keeps the recording
    a contiguous prefix of the traffic: once a line does not fit, nothing more is written, even
    a shorter line that would, so a replay never sees a recording with holes in it."""

    def __init__(
        self, path: str | os.PathLike[str], max_bytes: int, redact_headers: Iterable[str] = DEFAULT_REDACTED_HEADERS
    ) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.redact_headers = frozenset(name.lower() for name in redact_headers)
        self.written = 0
        self.dropped = 0
        self.errors = 0
        self._file: TextIO | None = None
        self._size = 0
        self._full = False

    def write(self, at: float, request_id: str, route: str, request: Request) -> bool:
        """Append one request; True if it was written. Never raises."""
        if self._full:
            self.dropped += 1
            return False
        try:
            line = json.dumps({"at": at, "request_id": request_id, "route": route, "request": self._redacted(request)})
            handle = self._open()
            size = len(line) + 1  # json.dumps escapes non-ASCII: characters are bytes
            if self._size + size > self.max_bytes:
                self._full = True
                self.dropped += 1
                return False
            handle.write(line + "\n")
        except (OSError, ValueError, TypeError):
            self.errors += 1
            return False
        self._size += size
        self.written += 1
        return True

    def close(self) -> None:
        handle, self._file = self._file, None
        if handle is not None:
            try:
                handle.close()
            except OSError:
                self.errors += 1

    def _open(self) -> TextIO:
        if self._file is None:
            handle = open(self.path, "a", buffering=1, encoding="utf-8")  # line-buffered: one write per line
            self._size = os.fstat(handle.fileno()).st_size
            self._file = handle
        return self._file

    def _redacted(self, request: Request) -> dict[str, Any]:
        entry = request.to_dict()
        if "headers" in entry and self.redact_headers:
            entry["headers"] = {
                name: REDACTED if name.lower() in self.redact_headers else value
                for name, value in entry["headers"].items()
            }
        return entry


def read_recording(path: str | os.PathLike[str]) -> Iterator[tuple[Request, dict[str, Any]]]:
    """Each recorded line's `Request` and its whole entry (`at`, `request_id`, `route`), in file
    order; blank lines are skipped. A line that is not a recorded request raises a ValueError
    naming `file:line`, so a truncated or hand-edited recording is easy to fix. Lazy: a replay
    with `--limit` reads only the lines it uses."""
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                if not isinstance(entry, dict) or not isinstance(entry.get("request"), dict):
                    raise ValueError('expected an object with a "request" object')
                request = Request.from_dict(entry["request"])
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{number}: not a recorded request ({exc})") from exc
            yield request, entry
