"""Recording sampled requests to a JSONL file, so `agentos-session replay` can send them to
both sides again later (after a fix, or against a new build) without live traffic.

One line per request: `{"at": epoch, "request_id": ..., "route": template, "request":
Request.to_dict()}`. Credentials are not written: headers are redacted by the one policy the
mismatch store uses (`redact.redact_headers`: the names in `redact_headers`, and always
`Authorization`, `Cookie` and `Set-Cookie`) and read `"<redacted>"`; replay gives them back
with `-H`. A JSON body's values at the store's `redact_paths` read `"<redacted>"` too (the same
`redact.redact_body` the stored samples get): a replayed request then sends that marker in
their place, which is what keeps the secret out of the file.

The gateway's background mirror worker calls `Recorder.write` synchronously, one request at a
time, so it is kept cheap (one `json.dumps`, one line-buffered `write`) and never raises: a
recording is a diagnostic aid and must not stop mirroring. Failures are counted instead
(`errors`, and `on_error`: the gateway's `shadow_record_errors_total`), as are requests refused
once the file reached `max_bytes` (`dropped`, `on_drop`: `shadow_record_dropped_total`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

from comparator import Request

from .redact import ALWAYS_REDACTED_HEADERS, REDACTED, redact_body, redact_headers

__all__ = ["DEFAULT_REDACTED_HEADERS", "REDACTED", "Recorder", "read_recording"]  # REDACTED: replay's marker

DEFAULT_REDACTED_HEADERS = tuple(sorted(ALWAYS_REDACTED_HEADERS))


def _nothing() -> None:
    """The default counter hook: the plain attributes count on their own."""


class Recorder:
    """Appends one JSON line per sampled request to `path` until the file holds `max_bytes`.

    The file is opened on the first `write` (so a bad path shows up as counted errors, not as a
    gateway that fails to start) and appended to if it exists. The cut-off keeps the recording
    a contiguous prefix of the traffic: once a line does not fit, nothing more is written, even
    a shorter line that would, so a replay never sees a recording with holes in it."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        max_bytes: int,
        redact_headers: Iterable[str] = DEFAULT_REDACTED_HEADERS,
        *,
        redact_paths: Iterable[str] = (),
        on_error: Callable[[], None] = _nothing,
        on_drop: Callable[[], None] = _nothing,
    ) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.redact_headers = tuple(redact_headers)
        self.redact_paths = tuple(redact_paths)
        self.on_error = on_error
        self.on_drop = on_drop
        self.written = 0
        self.dropped = 0
        self.errors = 0
        self._file: TextIO | None = None
        self._size = 0
        self._full = False

    def write(self, at: float, request_id: str, route: str, request: Request) -> bool:
        """Append one request; True if it was written. Never raises."""
        if self._full:
            self._dropped()
            return False
        try:
            line = json.dumps({"at": at, "request_id": request_id, "route": route, "request": self._redacted(request)})
            handle = self._open()
            size = len(line) + 1  # json.dumps escapes non-ASCII: characters are bytes
            if self._size + size > self.max_bytes:
                self._full = True
                self._dropped()
                return False
            handle.write(line + "\n")
        except (OSError, ValueError, TypeError):
            self._failed()
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
                self._failed()

    def _dropped(self) -> None:
        self.dropped += 1
        self.on_drop()

    def _failed(self) -> None:
        self.errors += 1
        self.on_error()

    def _open(self) -> TextIO:
        if self._file is None:
            handle = open(self.path, "a", buffering=1, encoding="utf-8")  # line-buffered: one write per line
            self._size = os.fstat(handle.fileno()).st_size
            self._file = handle
        return self._file

    def _redacted(self, request: Request) -> dict[str, Any]:
        if self.redact_paths and request.body:
            request = dataclasses.replace(request, body=redact_body(request.body, self.redact_paths))
        entry = request.to_dict()
        if "headers" in entry:
            entry["headers"] = redact_headers(entry["headers"], self.redact_headers)
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
