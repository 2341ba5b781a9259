"""JSON logs: the formatter (agentos_session.logs) on its own, then `serve` and `gateway` as
processes: every line of their output is one JSON object with `ts` (ISO-8601 UTC) and `level`,
the start-up line names host and port, and each client request is one access line (through the
gateway: with its group, stage and the side that answered). Real Postgres, real agno AgentOS."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import sys
import time
import warnings
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from agentos_session.logs import JsonLogFormatter, add_log_level_argument, configure_logging, iso_utc, parse_level
from harness.processes import free_port
from harness.services import gateway_env, reset_gateway_tables, start_gateway, start_native

SECRET = "sk-never-in-logs-456"


def record(msg: str = "hello %s", args: tuple[Any, ...] = ("world",), **extra: Any) -> logging.LogRecord:
    rec = logging.LogRecord("some.logger", logging.WARNING, __file__, 1, msg, args, None)
    for key, value in extra.items():
        setattr(rec, key, value)
    return rec


def parse_ts(value: str) -> datetime:
    assert value.endswith("Z"), value
    ts = datetime.fromisoformat(value)
    assert ts.utcoffset() == timedelta(0)
    return ts


def check_line(text: str) -> dict[str, Any]:
    """One log line: a JSON object with an ISO-8601 UTC `ts`, a `level`, a `logger`, a `msg`."""
    entry = json.loads(text)
    assert isinstance(entry, dict), text
    parse_ts(entry["ts"])
    assert entry["level"] in ("debug", "info", "warning", "error", "critical"), text
    assert isinstance(entry["logger"], str) and isinstance(entry["msg"], str), text
    return entry


# ---- the formatter ------------------------------------------------------------------------------


def test_a_plain_record_has_ts_level_logger_and_msg() -> None:
    rec = record()
    entry = check_line(JsonLogFormatter().format(rec))
    assert (entry["level"], entry["logger"], entry["msg"]) == ("warning", "some.logger", "hello world")
    assert abs(parse_ts(entry["ts"]).timestamp() - rec.created) < 0.001
    assert iso_utc(0) == "1970-01-01T00:00:00.000Z"


def test_fields_are_merged_but_cannot_replace_the_fixed_keys() -> None:
    rec = record(
        "request", (), fields={"status": 200, "ts": "forged", "level": "forged", "msg": "forged"}, request_id="rid-1"
    )
    entry = check_line(JsonLogFormatter().format(rec))
    assert (entry["msg"], entry["level"], entry["status"], entry["request_id"]) == ("request", "warning", 200, "rid-1")
    assert "forged" not in json.dumps(entry)


def test_an_exception_stays_on_one_line() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        rec = record("failed", (), exc_info=sys.exc_info())
    text = JsonLogFormatter().format(rec)
    assert "\n" not in text
    entry = check_line(text)
    assert "RuntimeError: boom" in entry["exc"] and "Traceback" in entry["exc"]


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        logging.captureWarnings(False)


def test_configure_logging_makes_warnings_json_too(restored_logging: None) -> None:
    stream = io.StringIO()
    configure_logging("debug", stream)
    logging.getLogger("x").debug("one %d", 1)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("careful", UserWarning, stacklevel=1)
    lines = [check_line(line) for line in stream.getvalue().splitlines()]
    assert [(e["logger"], e["level"]) for e in lines] == [("x", "debug"), ("py.warnings", "warning")]
    assert "careful" in lines[1]["msg"]


def test_log_levels() -> None:
    assert (parse_level("info"), parse_level("WARNING"), parse_level("15"), parse_level(logging.ERROR)) == (
        20,
        30,
        15,
        40,
    )
    with pytest.raises(ValueError, match="unknown log level 'loud'"):
        parse_level("loud")


def test_a_bad_log_level_is_a_usage_error(restored_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    import session_service.cli

    handlers = logging.getLogger().handlers[:]
    assert session_service.cli.main(["serve", "--log-level", "loud"]) == 2
    assert "unknown log level" in capsys.readouterr().err
    assert logging.getLogger().handlers == handlers  # nothing was changed


def test_the_log_level_option_defaults_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    parser = argparse.ArgumentParser()
    monkeypatch.setenv("AGNO_LOG_LEVEL", "DEBUG")
    add_log_level_argument(parser)
    assert parser.parse_args([]).log_level == "DEBUG"
    assert parser.parse_args(["--log-level", "error"]).log_level == "error"


# ---- the processes ------------------------------------------------------------------------------


def json_lines(output: str) -> list[dict[str, Any]]:
    lines = output.splitlines()
    assert lines, "no output at all"
    return [check_line(line) for line in lines]


def access_lines(lines: list[dict[str, Any]], request_id: str) -> list[dict[str, Any]]:
    return [e for e in lines if e["msg"] == "request" and e.get("request_id") == request_id]


def test_serve_writes_only_json_lines(pg_dsn: str, seeded: None) -> None:
    proc = start_native({"AGNO_PG_DSN": pg_dsn, "AGNO_DEFAULT_DB_ID": "main-db"}, "native-logs")
    try:
        httpx.get(proc.url + "/sessions/s-agent-1", headers={"X-Request-ID": "log-serve-1", "Authorization": SECRET})
        httpx.get(proc.url + "/no/such/path", headers={"X-Request-ID": "log-serve-2"})
        httpx.get(proc.url + "/readyz", headers={"X-Request-ID": "log-serve-3"})
    finally:
        proc.stop()
    output = proc.output()
    lines = json_lines(output)
    port = proc.url.rsplit(":", 1)[1]
    assert any(e["msg"] == f"session service listening on 127.0.0.1:{port}" and e["level"] == "info" for e in lines), (
        output
    )
    (one,) = access_lines(lines, "log-serve-1")
    assert (one["logger"], one["level"], one["route"], one["status"]) == (
        "session_service.access",
        "info",
        "/sessions/{session_id}",
        200,
    )
    assert access_lines(lines, "log-serve-2")[0]["route"] == "unmatched"
    assert access_lines(lines, "log-serve-3")[0]["route"] == "/readyz"
    assert SECRET not in output and "s-agent-1" not in output


def compared(metrics: str, route: str) -> float:
    return sum(
        s.value
        for f in text_string_to_metric_families(metrics)
        for s in f.samples
        if s.name == "shadow_comparisons_total" and s.labels.get("route") == route
    )


def test_the_gateway_writes_one_access_line_per_request(
    pg_dsn: str, seeded: None, legacy_url: str, tmp_path: Path
) -> None:
    asyncio.run(reset_gateway_tables(pg_dsn))  # a stored stage would win over AGNO_GATEWAY_STAGE
    port = free_port()
    env = gateway_env(pg_dsn, legacy_url, port, "primary")
    log_path = tmp_path / "gateway.log"
    proc = start_gateway(port, env, log_path)
    base = proc.url
    try:
        headers = {"Authorization": f"Bearer {SECRET}"}
        assert httpx.get(base + "/agents", headers={**headers, "X-Request-ID": "log-gw-agents"}).status_code == 200
        assert (
            httpx.get(base + "/sessions/s-agent-1", headers={**headers, "X-Request-ID": "log-gw-session"}).status_code
            == 200
        )
        # The read's copy to legacy is compared off the hot path; let it finish before stopping.
        for _ in range(100):
            if compared(httpx.get(base + "/metrics").text, "GET /sessions/{session_id}"):
                break
            time.sleep(0.1)
    finally:
        proc.stop()
    output = log_path.read_text(errors="replace")
    lines = json_lines(output)
    assert any(e["msg"] == f"gateway listening on 127.0.0.1:{port}" for e in lines), output
    (agents,) = access_lines(lines, "log-gw-agents")
    (session,) = access_lines(lines, "log-gw-session")  # the native side's own line is at DEBUG; no mirror line
    assert (agents["logger"], agents["level"], agents["status"]) == ("shadow_proxy.access", "info", 200)
    assert (agents["group"], agents["stage"], agents["side"], agents["fallback"]) == (
        "unrouted",
        "legacy",
        "legacy",
        None,
    )
    assert (session["route"], session["status"]) == ("GET /sessions/{session_id}", 200)
    assert (session["group"], session["stage"], session["side"], session["fallback"]) == (
        "reads",
        "primary",
        "native",
        None,
    )
    assert SECRET not in output and "s-agent-1" not in output
