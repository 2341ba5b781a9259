"""Differential tests of security-key auth (OS_SECURITY_KEY) and multi-database routing (db_id)."""

from __future__ import annotations

from typing import Iterator, Optional

import httpx
import pytest

from tests.contract.differential import assert_same, send
from tests.legacy.fixtures import SECURITY_KEY

pytestmark = pytest.mark.contract


@pytest.fixture(scope="module")
def secured(legacy_secured_url: str, native_secured_url: str) -> Iterator[tuple[httpx.Client, str, str]]:
    with httpx.Client(timeout=30) as client:
        yield client, legacy_secured_url, native_secured_url


@pytest.fixture(scope="module")
def multi(legacy_multi_url: str, native_multi_url: str) -> Iterator[tuple[httpx.Client, str, str]]:
    with httpx.Client(timeout=30) as client:
        yield client, legacy_multi_url, native_multi_url


AUTH_HEADERS = [
    # (httpx refuses header values with leading or trailing blanks, so those are not sent)
    None, "", "Bearer", f"Bearer {SECURITY_KEY}", f"bearer {SECURITY_KEY}", f"BEARER {SECURITY_KEY}",
    SECURITY_KEY, f"Bearer  {SECURITY_KEY}", "Bearer wrong", "Basic x", f"Bearer {SECURITY_KEY}x", f"Token {SECURITY_KEY}",
]  # fmt: skip


@pytest.mark.parametrize("authorization", AUTH_HEADERS)
@pytest.mark.parametrize("method,path", [("GET", "/sessions"), ("GET", "/sessions/s-agent-1"), ("GET", "/nope"),
                                         ("DELETE", "/sessions/does-not-exist"), ("PUT", "/sessions")])  # fmt: skip
def test_security_key(secured, authorization: Optional[str], method: str, path: str) -> None:
    client, legacy, native = secured
    headers = {} if authorization is None else {"Authorization": authorization}
    assert_same(send(client, legacy, method, path, headers=headers), send(client, native, method, path, headers=headers))


MULTI_CASES = [
    "/sessions", "/sessions?db_id=main-db", "/sessions?db_id=second-db", "/sessions?db_id=nope",
    "/sessions?db_id=second-db&table=agno_sessions", "/sessions?db_id=second-db&table=nope", "/sessions?table=agno_sessions",
    "/sessions/s-second-1", "/sessions/s-second-1?db_id=second-db", "/sessions/s-second-1?db_id=main-db",
    "/sessions/s-agent-1?db_id=main-db", "/sessions/s-second-1/runs?db_id=second-db",
    "/sessions/s-second-1/run-previews?db_id=second-db", "/sessions/s-second-1/runs/run-s-second-1?db_id=second-db",
]  # fmt: skip


@pytest.mark.parametrize("path", MULTI_CASES)
def test_multi_db_reads(multi, path: str) -> None:
    client, legacy, native = multi
    assert_same(send(client, legacy, "GET", path), send(client, native, "GET", path))


@pytest.mark.parametrize("query", ["", "?db_id=nope", "?db_id=second-db&type=bad"])
def test_multi_db_write_errors(multi, query: str) -> None:
    client, legacy, native = multi
    body = {"session_id": "multi-never-created"}
    assert_same(send(client, legacy, "POST", "/sessions" + query, body=body), send(client, native, "POST", "/sessions" + query, body=body))
