"""CORS, differentially: browsers (the agno UI at os.agno.com) read the sessions API across
origins, so the native service must answer preflights and add CORS headers exactly as AgentOS's
CORS middleware does. config/comparator.yaml compares `vary` and the `access-control-*` headers
on every contract test; these cases aim at them."""

from __future__ import annotations

import pytest

from comparator import Request
from comparator.pytest_plugin import Parity

pytestmark = pytest.mark.contract

AGNO_UI = "https://os.agno.com"
PREFLIGHTS = [
    {"Access-Control-Request-Method": "GET"},
    {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,authorization"},
    {"Access-Control-Request-Method": "DELETE", "Access-Control-Request-Headers": "X-Custom, Content-Type"},
    {"Access-Control-Request-Method": "FOO"},
    {"Access-Control-Request-Method": "GET", "Access-Control-Request-Private-Network": "true"},
]


@pytest.mark.parametrize("origin", [AGNO_UI, "http://localhost:3000", "https://evil.example", "null", None])
@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/sessions"),
        ("GET", "/sessions/s-agent-1"),
        ("GET", "/sessions/nope"),
        ("GET", "/sessions?type=bad"),
        ("PUT", "/sessions"),
        ("GET", "/nope"),
        ("OPTIONS", "/sessions"),
        ("GET", "/sessions?page=0"),
    ],
)
async def test_simple_requests(
    parity: Parity, legacy_url: str, native_url: str, origin: str | None, method: str, path: str
) -> None:
    headers = {"Origin": origin} if origin else {}
    expect = "expected" if "page=0" in path else "match"  # page=0: a known difference (500 vs 422)
    await parity.check(Request(method, path, headers), primary=legacy_url, shadow=native_url, expect=expect)


@pytest.mark.parametrize("origin", [AGNO_UI, "https://evil.example"])
@pytest.mark.parametrize("request_headers", PREFLIGHTS)
@pytest.mark.parametrize("path", ["/sessions", "/sessions/s-agent-1/runs", "/nope"])
async def test_preflights(
    parity: Parity, legacy_url: str, native_url: str, origin: str, request_headers: dict[str, str], path: str
) -> None:
    request = Request("OPTIONS", path, {"Origin": origin, **request_headers})
    await parity.check(request, primary=legacy_url, shadow=native_url, expect="match")


@pytest.mark.parametrize(
    "probe",
    [
        Request(
            "OPTIONS",
            "/sessions",
            {
                "Origin": AGNO_UI,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization",
            },
        ),
        Request("GET", "/sessions", {"Origin": AGNO_UI}),
        Request("GET", "/sessions", {"Origin": AGNO_UI, "Authorization": "Bearer wrong"}),
        Request("GET", "/sessions", {"Origin": "https://evil.example"}),
        Request("GET", "/sessions/s-agent-1", {"Origin": AGNO_UI, "Authorization": "Bearer test-security-key"}),
    ],
    ids=["preflight", "no-key", "wrong-key", "other-origin", "right-key"],
)
async def test_security_key_with_cors(
    parity: Parity, legacy_secured_url: str, native_secured_url: str, probe: Request
) -> None:
    """A preflight needs no key; a 401 to an allowed origin carries agno's own CORS headers."""
    await parity.check(probe, primary=legacy_secured_url, shadow=native_secured_url, expect="match")
