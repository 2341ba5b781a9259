"""Differential tests of security-key auth (OS_SECURITY_KEY) and multi-database routing (db_id)."""

from __future__ import annotations

import httpx
import pytest

from comparator import Request
from comparator.pytest_plugin import Parity
from tests.contract.differential import Pair
from tests.legacy.fixtures import SECURITY_KEY

pytestmark = pytest.mark.contract


@pytest.fixture
def secured(http: httpx.Client, legacy_secured_url: str, native_secured_url: str, parity: Parity) -> Pair:
    return Pair(http, legacy_secured_url, native_secured_url, parity)


@pytest.fixture
def multi(http: httpx.Client, legacy_multi_url: str, native_multi_url: str, parity: Parity) -> Pair:
    return Pair(http, legacy_multi_url, native_multi_url, parity)


AUTH_HEADERS = [
    # (httpx refuses header values with leading or trailing blanks, so those are not sent)
    None,
    "",
    "Bearer",
    f"Bearer {SECURITY_KEY}",
    f"bearer {SECURITY_KEY}",
    f"BEARER {SECURITY_KEY}",
    SECURITY_KEY,
    f"Bearer  {SECURITY_KEY}",
    "Bearer wrong",
    "Basic x",
    f"Bearer {SECURITY_KEY}x",
    f"Token {SECURITY_KEY}",
]


@pytest.mark.parametrize("authorization", AUTH_HEADERS)
@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/sessions"),
        ("GET", "/sessions/s-agent-1"),
        ("GET", "/nope"),
        ("DELETE", "/sessions/does-not-exist"),
        ("PUT", "/sessions"),
    ],
)
async def test_security_key(secured: Pair, authorization: str | None, method: str, path: str) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    await secured.parity.check(
        Request(method, path, headers), primary=secured.legacy, shadow=secured.native, expect="match"
    )


MULTI_CASES = [
    "/sessions",
    "/sessions?db_id=main-db",
    "/sessions?db_id=second-db",
    "/sessions?db_id=nope",
    "/sessions?db_id=second-db&table=agno_sessions",
    "/sessions?db_id=second-db&table=nope",
    "/sessions?table=agno_sessions",
    "/sessions/s-second-1",
    "/sessions/s-second-1?db_id=second-db",
    "/sessions/s-second-1?db_id=main-db",
    "/sessions/s-agent-1?db_id=main-db",
    "/sessions/s-second-1/runs?db_id=second-db",
    "/sessions/s-second-1/run-previews?db_id=second-db",
    "/sessions/s-second-1/runs/run-s-second-1?db_id=second-db",
]


@pytest.mark.parametrize("path", MULTI_CASES)
async def test_multi_db_reads(multi: Pair, path: str) -> None:
    await multi.parity.check(f"GET {path}", primary=multi.legacy, shadow=multi.native, expect="match")


@pytest.mark.parametrize("query", ["", "?db_id=nope", "?db_id=second-db&type=bad"])
def test_multi_db_write_errors(multi: Pair, query: str) -> None:
    lr, nr = multi.both("POST", "/sessions" + query, "/sessions" + query, body={"session_id": "multi-never-created"})
    multi.same(lr, nr, f"POST /sessions{query}")
