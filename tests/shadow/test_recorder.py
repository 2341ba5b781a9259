"""`shadow_proxy.recorder`: the JSONL a replay reads. The line format, redaction of credentials,
the `max_bytes` cut-off, I/O failures counted instead of raised (the gateway's mirror worker
must keep going), and `read_recording` reading back what `Recorder` wrote."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from comparator import Request
from shadow_proxy.recorder import REDACTED, Recorder, read_recording

GET = Request("GET", "/sessions/s-agent-1?type=agent", {"Authorization": "Bearer secret", "X-Trace": "t1"})
POST = Request(
    "POST", "/sessions", {"Content-Type": "application/json", "cookie": "sid=1"}, b'{"session_name":"\xc3\xa9"}'
)


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_one_json_line_per_request(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    recorder = Recorder(path, max_bytes=10_000)
    assert recorder.write(1700000000.5, "req-1", "GET /sessions/{session_id}", GET)
    assert recorder.write(1700000001.0, "req-2", "POST /sessions", POST)
    recorder.close()

    first, second = lines(path)
    assert first == {
        "at": 1700000000.5,
        "request_id": "req-1",
        "route": "GET /sessions/{session_id}",
        "request": {
            "method": "GET",
            "target": "/sessions/s-agent-1?type=agent",
            "headers": {"Authorization": REDACTED, "X-Trace": "t1"},
        },
    }
    assert second["request"]["body"] == '{"session_name":"é"}'
    assert path.read_bytes().isascii()  # non-ASCII is escaped: the byte count is the character count
    assert (recorder.written, recorder.dropped, recorder.errors) == (2, 0, 0)


def test_credentials_are_redacted_by_name_in_any_case(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    recorder = Recorder(path, max_bytes=10_000, redact_headers=("Authorization", "Cookie", "X-Api-Key"))
    recorder.write(
        1.0,
        "r",
        "POST /sessions",
        Request(
            "POST",
            "/sessions",
            {"AUTHORIZATION": "Bearer secret-1", "Cookie": "secret-2", "x-api-key": "secret-3", "Accept": "*/*"},
        ),
    )
    recorder.close()
    assert lines(path)[0]["request"]["headers"] == {
        "AUTHORIZATION": REDACTED,
        "Cookie": REDACTED,
        "x-api-key": REDACTED,
        "Accept": "*/*",
    }
    assert "secret" not in path.read_text()


def test_max_bytes_stops_the_recording_for_good(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    one_line = (
        len(
            json.dumps(
                {
                    "at": 1.0,
                    "request_id": "r",
                    "route": "GET /sessions",
                    "request": Request("GET", "/sessions").to_dict(),
                }
            )
        )
        + 1
    )
    recorder = Recorder(path, max_bytes=2 * one_line + 10)
    results = [recorder.write(1.0, "r", "GET /sessions", Request("GET", "/sessions")) for _ in range(4)]
    # A shorter line would still fit, but the recording stays a prefix of the traffic.
    results.append(recorder.write(1.0, "r", "GET /", Request("GET", "/")))
    recorder.close()
    assert results == [True, True, False, False, False]
    assert (recorder.written, recorder.dropped) == (2, 3)
    assert path.stat().st_size == 2 * one_line <= recorder.max_bytes


def test_an_existing_file_is_appended_to_and_counts_toward_max_bytes(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    path.write_text("x" * 95 + "\n")
    recorder = Recorder(path, max_bytes=100)
    assert not recorder.write(1.0, "r", "GET /sessions", Request("GET", "/sessions"))
    recorder.close()
    assert recorder.dropped == 1
    assert path.read_text() == "x" * 95 + "\n"


def test_io_errors_are_counted_not_raised(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path, max_bytes=10_000)  # a directory: open() fails every time
    assert not recorder.write(1.0, "r", "GET /sessions", GET)
    assert not recorder.write(2.0, "r", "GET /sessions", GET)
    recorder.close()
    assert (recorder.written, recorder.errors, recorder.dropped) == (0, 2, 0)


def test_read_recording_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    binary = Request("PATCH", "/sessions/s-1", {"Content-Type": "application/octet-stream"}, b"\xff\x00\xfe")
    recorder = Recorder(path, max_bytes=10_000)
    for i, request in enumerate((GET, POST, binary)):
        recorder.write(float(i), f"req-{i}", "route", request)
    recorder.close()
    with path.open("a") as handle:
        handle.write("\n")  # blank lines are skipped

    read = list(read_recording(path))
    assert [request for request, _ in read] == [
        Request(GET.method, GET.target, {"Authorization": REDACTED, "X-Trace": "t1"}),
        Request(POST.method, POST.target, {"Content-Type": "application/json", "cookie": REDACTED}, POST.body),
        binary,
    ]
    assert [entry["request_id"] for _, entry in read] == ["req-0", "req-1", "req-2"]


@pytest.mark.parametrize(
    "bad",
    [
        '{"at": 1.0, "request_id": "r", "route": "GET /", "req',
        '["GET /"]',
        '{"request": {"target": "/sessions"}}',
        '{"request": "GET /sessions"}',
    ],
)
def test_a_malformed_line_names_file_and_line(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "rec.jsonl"
    good = json.dumps(
        {"at": 1.0, "request_id": "r", "route": "GET /sessions", "request": {"method": "GET", "target": "/sessions"}}
    )
    path.write_text(f"{good}\n\n{bad}\n{good}\n")
    reader = read_recording(path)
    assert next(reader)[0] == Request("GET", "/sessions")
    with pytest.raises(ValueError, match="^" + re.escape(f"{path}:3: not a recorded request")):
        next(reader)


def test_one_redaction_policy_credentials_are_gone_whatever_is_configured(tmp_path: Path) -> None:
    """`store.redact_headers: [x-api-key]` names only an API key: Authorization and Cookie are
    still redacted, as the mismatch store does (redact.redact_headers, the one policy)."""
    path = tmp_path / "rec.jsonl"
    recorder = Recorder(path, max_bytes=10_000, redact_headers=["x-api-key"])
    headers = {"Authorization": "Bearer sk-secret", "Cookie": "c=1", "X-Api-Key": "k-1", "X-Trace": "t"}
    assert recorder.write(1.0, "r", "GET /sessions", Request("GET", "/sessions", headers))
    recorder.close()
    text = path.read_text()
    assert "sk-secret" not in text and "c=1" not in text and "k-1" not in text
    [(request, _)] = list(read_recording(path))
    assert request.headers == {"Authorization": REDACTED, "Cookie": REDACTED, "X-Api-Key": REDACTED, "X-Trace": "t"}


def test_errors_and_drops_reach_the_counter_hooks(tmp_path: Path) -> None:
    from shadow_proxy.metrics import GatewayMetrics

    metrics = GatewayMetrics()
    hooks = {"on_error": metrics.record_errors.inc, "on_drop": metrics.record_dropped.inc}
    broken = Recorder(tmp_path, max_bytes=10_000, **hooks)  # a directory: open() fails every time
    broken.write(1.0, "r", "GET /sessions", GET)
    full = Recorder(tmp_path / "rec.jsonl", max_bytes=10, **hooks)
    full.write(1.0, "r", "GET /sessions", GET)
    full.write(2.0, "r", "GET /sessions", GET)
    value = metrics.registry.get_sample_value
    assert (value("shadow_record_errors_total"), value("shadow_record_dropped_total")) == (1.0, 2.0)
    assert (broken.errors, full.dropped) == (1, 2)
