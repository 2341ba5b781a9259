"""Differential contract tests of the read routes: the same request to agno and to the native
service through `parity.check` (the comparator's pytest fixture), which requires a `match`:
same status, content type, Allow and body bytes. Data: harness/seed.py (real agno runs)."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from comparator import Comparison, Response
from comparator.pytest_plugin import Parity
from harness import seed
from tests.contract.differential import body_of, normalize

pytestmark = pytest.mark.contract

SESSIONS = list(seed.SESSION_ORDER)
COLUMNS = [
    "session_id",
    "session_type",
    "agent_id",
    "team_id",
    "workflow_id",
    "user_id",
    "created_at",
    "updated_at",
    "session_data",
    "metadata",
    "summary",
    "agent_data",
    "runs",
    "no_such_column",
    "Session_Id",
]

LIST_CASES = [
    "",
    "/",
    "//",
    "?type=agent",
    "?type=team",
    "?type=workflow",
    "?type=foo",
    "?type=",
    "?type=AGENT",
    "?component_id=basic-agent",
    "?component_id=basic-team",
    "?component_id=basic-workflow",
    "?component_id=member-agent",
    "?component_id=nope",
    "?type=agent&component_id=basic-agent",
    "?type=team&component_id=basic-agent",
    "?type=workflow&component_id=basic-workflow",
    "?user_id=user-1",
    "?user_id=user-2",
    "?user_id=user-6",
    "?user_id=",
    "?user_id=nope",
    "?user_id=u1",
    "?session_name=a",
    "?session_name=",
    "?session_name=%25",
    "?session_name=_",
    "?session_name=tools",
    "?session_name=Z%C3%B6",
    "?limit=1",
    "?limit=2",
    "?limit=3&page=2",
    "?limit=5&page=3",
    "?limit=100",
    "?limit=2&page=99",
    "?page=2",
    "?limit=0",
    "?limit=-1",
    "?limit=abc",
    "?limit=1.5",
    "?limit=",
    "?page=-1",
    "?page=abc",
    "?limit=1&limit=3",
    "?sort_order=asc",
    "?sort_order=desc",
    "?sort_order=up",
    "?sort_order=ASC",
    "?table=agno_sessions",
    "?db_id=main-db",
    "?db_id=nope",
    "?db_id=main-db&table=agno_sessions",
    "?db_id=main-db&table=nope",
    "?db_id=main-db&table=agno_memories",
    "?db_id=nope&table=agno_sessions",
    "?type=foo&limit=0&sort_order=x",
    "?user_id=user-1&type=agent&limit=1&page=2",
    "?unknown=1",
] + [f"?sort_by={c}&sort_order={o}" for c in COLUMNS for o in ("asc", "desc")]


@pytest.fixture
def pair(parity: Parity, legacy_url: str, native_url: str) -> tuple[Parity, str, str]:
    return parity, legacy_url, native_url


async def check(pair: tuple[Parity, str, str], method: str, path: str, expect: str = "match") -> Comparison:
    parity, legacy, native = pair
    return await parity.check(f"{method} {path}", primary=legacy, shadow=native, expect=expect)


@pytest.mark.parametrize("query", LIST_CASES)
async def test_list(pair, query: str) -> None:
    await check(pair, "GET", "/sessions" + query)


DETAIL_VARIANTS = ["", "?type=agent", "?type=team", "?type=workflow", "/"]


@pytest.mark.parametrize("variant", DETAIL_VARIANTS)
@pytest.mark.parametrize("session_id", SESSIONS)
async def test_detail(pair, session_id: str, variant: str) -> None:
    """A session whose `updated_at` is SQL NULL (legacy-1) renders the server's clock as its
    workflow `updated_at` on both sides, which can tick between the two calls: timestamps within
    a few seconds of now are masked (`mask_clock`); every other byte must still be equal."""
    parity, legacy, native = pair
    request = f"GET /sessions/{session_id}{variant}"
    answers = [normalize(await parity.send(request, side), {}) for side in (legacy, native)]
    first, second = (
        Response(a.status, a.headers, a.body, name) for a, name in zip(answers, ("legacy", "native"), strict=True)
    )
    parity.verify(first, second, request=request)


@pytest.mark.parametrize(
    "path",
    [
        "/sessions/nope",
        "/sessions/nope?type=team",
        "/sessions/nope?type=workflow",
        "/sessions/nope?type=agent",
        "/sessions/s-agent-1?user_id=user-1",
        "/sessions/s-agent-1?user_id=user-2",
        "/sessions/s-agent-1?type=bad",
        "/sessions/s-agent-1?table=agno_sessions",
        "/sessions/s-agent-1?db_id=main-db",
        "/sessions/s-agent-1?db_id=x",
        "/sessions/" + quote("ünïcode id"),
        "/sessions/a%2Fb",
        "/sessions/s-agent-1/",
        "/sessions/s-agent-1//",
    ],
)
async def test_detail_edges(pair, path: str) -> None:
    await check(pair, "GET", path)


RUNS_VARIANTS = ["", "?type=agent", "?type=team", "?type=workflow"]


@pytest.mark.parametrize("variant", RUNS_VARIANTS)
@pytest.mark.parametrize("session_id", SESSIONS)
@pytest.mark.parametrize("route", ["runs", "run-previews"])
async def test_runs(pair, route: str, session_id: str, variant: str) -> None:
    await check(pair, "GET", f"/sessions/{session_id}/{route}{variant}")


RUN_FILTERS = [
    "?status=COMPLETED",
    "?status=completed",
    "?status=error",
    "?status=ERROR&status=cancelled",
    "?status=foo",
    "?status=foo&status=Bar&status=COMPLETED",
    "?status=",
    f"?created_after={seed.BASE_TS + 8 * 60}",
    f"?created_before={seed.BASE_TS + 8 * 60 + 10}",
    "?created_after=abc",
    "?created_before=1.5",
    "?created_after=0&created_before=9999999999",
    "?user_id=user-2",
    "?user_id=nope",
    "?db_id=nope",
    "?table=x",
    "?type=nope",
]


@pytest.mark.parametrize("query", RUN_FILTERS)
@pytest.mark.parametrize("route", ["runs", "run-previews"])
async def test_run_filters(pair, route: str, query: str) -> None:
    await check(pair, "GET", f"/sessions/{seed.S_AGENT_STATUS}/{route}{query}")


@pytest.mark.parametrize("route", ["runs", "run-previews", "runs/x"])
@pytest.mark.parametrize("session_id", ["nope", seed.NULL_DATA_1])
async def test_runs_missing(pair, route: str, session_id: str) -> None:
    await check(pair, "GET", f"/sessions/{session_id}/{route}")


@pytest.mark.parametrize("session_id", SESSIONS)
async def test_each_run_by_id(pair, session_id: str) -> None:
    """Every run the legacy lists, fetched by id from both (plus its run-by-id variants)."""
    parity, legacy, _ = pair
    runs = body_of(await parity.send(f"GET /sessions/{session_id}/runs", legacy))
    ids = [r["run_id"] for r in runs] or ["none"]
    for run_id in ids + ["nope"]:
        for variant in ("", "?type=team", "?user_id=nope"):
            await check(pair, "GET", f"/sessions/{session_id}/runs/{run_id}{variant}")


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/nope"),
        ("GET", "/sessions/a/b/c/d"),
        ("PUT", "/sessions"),
        ("PUT", "/sessions/s-agent-1"),
        ("POST", "/sessions/s-agent-1"),
        ("DELETE", "/sessions/s-agent-1/runs"),
        ("GET", "/sessions/s-agent-1/rename"),
        ("PATCH", "/sessions"),
        ("GET", "/sessions/s-agent-1/runs/x/y"),
        ("POST", "/sessions/s-agent-1/runs"),
        ("HEAD", "/sessions"),
        ("HEAD", "/sessions/s-agent-1"),
        ("OPTIONS", "/sessions"),
        ("PUT", "/sessions/x/"),
    ],
)
async def test_routing_defaults(pair, method: str, path: str) -> None:
    await check(pair, method, path)  # config/comparator.yaml compares the Allow header too


@pytest.mark.parametrize(
    "entry,query",
    [
        ("list-page-zero", "?page=0"),
        ("list-sort-by-collection-attribute", "?sort_by=keys"),
        ("list-sort-by-collection-attribute", "?sort_by=items&sort_order=asc"),
    ],
)
async def test_known_list_differences(pair, entry: str, query: str) -> None:
    comparison = await check(pair, "GET", "/sessions" + query, expect="expected")
    assert comparison.known == entry
