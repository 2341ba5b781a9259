"""Slow and idle clients against the service as operators run it (`agentos-session serve`'s
code path, its own process): a request head sent one byte per second, a connection that sends
nothing, a body that trickles, and more connections than `AGNO_MAX_CONNECTIONS`."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest

from tests.reliability.conftest import ServiceProcess, StoppablePg

IDLE_S = 2
REQUEST_TIMEOUT_S = 3
MAX_CONNECTIONS = 4
SLACK_S = 2.5  # scheduling on a shared machine; the bounds themselves are seconds apart


@pytest.fixture(scope="module")
def service(own_pg: StoppablePg) -> Iterator[ServiceProcess]:
    own_pg.start()
    proc = ServiceProcess(
        {
            "AGNO_PG_DSN": own_pg.dsn,
            "AGNO_DEFAULT_DB_ID": "main-db",
            "AGNO_IDLE_TIMEOUT_S": str(IDLE_S),
            "AGNO_REQUEST_TIMEOUT_S": str(REQUEST_TIMEOUT_S),
            "AGNO_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
            "AGNO_LOG_LEVEL": "WARNING",
        }
    )
    try:
        yield proc
    finally:
        proc.stop()


def connect(service: ServiceProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", service.port), timeout=30)
    sock.settimeout(0.2)
    return sock


def read_until_closed(sock: socket.socket, bound_s: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and when it closed (bounded wait)."""
    started, data = time.monotonic(), b""
    while time.monotonic() - started < bound_s:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    else:
        raise AssertionError(f"still open after {bound_s} s")
    return data, time.monotonic() - started


def test_a_head_sent_one_byte_per_second_is_cut_off(service: ServiceProcess) -> None:
    head = b"GET /sessions HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"a" * 40 + b"\r\n\r\n"
    sock = connect(service)
    started, sent, closed_at = time.monotonic(), 0, None
    try:
        for byte in head:
            try:
                sock.sendall(bytes([byte]))
                sent += 1
                if sock.recv(1) == b"":
                    closed_at = time.monotonic() - started
                    break
            except TimeoutError:
                time.sleep(0.8)  # about one byte per second with the recv's 0.2 s
                continue
            except (BrokenPipeError, ConnectionResetError):
                closed_at = time.monotonic() - started
                break
    finally:
        sock.close()
    assert closed_at is not None, "the whole head was accepted at one byte per second"
    assert sent < len(head)
    assert closed_at < IDLE_S + SLACK_S, closed_at


def test_a_silent_connection_is_closed_after_the_idle_timeout(service: ServiceProcess) -> None:
    sock = connect(service)
    try:
        data, after = read_until_closed(sock, IDLE_S + SLACK_S + 5)
    finally:
        sock.close()
    assert data == b""
    assert IDLE_S - 0.5 < after < IDLE_S + SLACK_S, after


def test_a_trickling_body_is_answered_504_within_the_request_timeout(service: ServiceProcess) -> None:
    body = json.dumps({"session_id": "slow-body", "agent_id": "a"}).encode()
    head = (
        "POST /sessions?type=agent HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    sock = connect(service)
    started, answer = time.monotonic(), b""
    try:
        sock.sendall(head)
        for byte in body:
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            try:
                answer += sock.recv(65536)
            except TimeoutError:
                time.sleep(0.5)
            if answer:
                break
        elapsed = time.monotonic() - started
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 504 "), answer[:200]
    assert answer.endswith(f'{{"detail":"Request timed out after {REQUEST_TIMEOUT_S} s"}}'.encode())
    assert elapsed < REQUEST_TIMEOUT_S + SLACK_S, elapsed


def test_connections_past_the_limit_get_503_and_are_closed(service: ServiceProcess) -> None:
    held = [connect(service) for _ in range(MAX_CONNECTIONS)]
    try:
        time.sleep(0.3)  # the server has seen them all
        extra = connect(service)
        try:
            data, _after = read_until_closed(extra, 5)
        finally:
            extra.close()
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503 "), data[:200]
        assert b"Retry-After: 1" in head
        assert json.loads(body) == {"detail": "Too many connections"}
    finally:
        for sock in held:
            sock.close()
    # Below the limit again: served.
    for _ in range(50):
        sock = connect(service)
        try:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data, _after = read_until_closed(sock, 5)
        finally:
            sock.close()
        if data.startswith(b"HTTP/1.1 200 "):
            break
        time.sleep(0.1)
    assert data.startswith(b"HTTP/1.1 200 "), data[:200]
