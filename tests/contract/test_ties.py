"""Ties on real rows, with both real sides: sessions sharing a created_at, listed by the real
agno AgentOS and by the native service over one Postgres, the same pages asked many times.

Postgres lists tied rows in the order of the plan it picked, and both drivers change plans
after a few executions of one statement (psycopg prepares from the 5th, asyncpg caches
statements; Postgres then moves from custom plans to a generic one): for a while the two
sides list a page from different plans. When exactly depends on which pooled connection
served which request, so here each side's plan is pinned instead (`plan_cache_mode`: agno
always plans the query with its values, native always uses the generic plan), which is where
the switch leads, on every round. The raw comparison (the shipped rules without the `sorted`
rule) finds `order` mismatches on some pairs, the shipped rules on none, and a genuine order
bug (two items of different keys swapped in one side's body) stays a mismatch.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from comparator import PAGE_EDGE_TIE, Comparison, Request, Response, Rules, compare
from tests.conftest import NativeProcess
from tests.legacy.fixtures import AgentOSProcess
from tests.legacy.seed import SESSIONS, _connect, _jsonb

pytestmark = pytest.mark.contract

REPO = Path(__file__).resolve().parents[2]
USER = "ties-user"
FILLER = "ties-filler"
FILLER_ROWS = 4000
ROUNDS = 15  # identical requests per page and side: past both drivers' plan switches (5th, 10th)

# created_at -> how many sessions share it: runs of 6, 5, 1 and 4 (whole seconds, as agno stores).
BASE = 1_900_000_000
GROUPS = {BASE + 300: 6, BASE + 200: 5, BASE + 150: 1, BASE + 100: 4}

PAGES = [
    f"/sessions?user_id={USER}",  # created_at desc, one page of 16
    f"/sessions?user_id={USER}&sort_order=asc",
    f"/sessions?user_id={USER}&limit=4&page=2",  # cut inside the run of 6, then inside the run of 5
    f"/sessions?user_id={USER}&limit=5&page=1",
    f"/sessions?user_id={USER}&limit=5&page=3",
    f"/sessions?user_id={USER}&sort_by=updated_at&limit=8",
    f"/sessions?user_id={USER}&sort_by=session_type",  # every row tied
    f"/sessions?user_id={USER}&sort_by=not_a_column",  # no ORDER BY at all
    # Unfiltered: USER's sessions are the newest (2030), so they fill these desc pages.
    "/sessions?limit=5",
    "/sessions?limit=4&page=2",
    "/sessions?limit=10&page=1",
    "/sessions",
]


@pytest.fixture(scope="module")
def tied_rows(seeded: None, pg_dsn: str) -> Iterator[list[str]]:
    """16 agent sessions of USER in GROUPS, inserted in a shuffled order (so the table's own
    order is not the ids' order), removed afterwards so other tests' pages are unaffected."""
    rows = [(f"tie-{at - BASE}-{i}", at) for at, count in GROUPS.items() for i in range(count)]
    random.Random(13).shuffle(rows)
    with _connect(pg_dsn) as conn:
        conn.execute(f"DELETE FROM {SESSIONS} WHERE user_id IN (%s, %s)", (USER, FILLER))
        for session_id, at in rows:
            conn.execute(
                f"INSERT INTO {SESSIONS} (session_id, session_type, agent_id, user_id, session_data, agent_data, "
                "created_at, updated_at) VALUES (%s, 'agent', 'basic-agent', %s, %s, %s, %s, %s)",
                (
                    session_id,
                    USER,
                    _jsonb({"session_name": session_id, "session_state": {}}),
                    _jsonb({"agent_id": "basic-agent", "name": "Basic Agent"}),
                    at,
                    at + 5,
                ),
            )
        # Older filler rows of another user make the table large enough for the planner to
        # weigh walking the created_at index against sorting a scan.
        with conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {SESSIONS} (session_id, session_type, agent_id, user_id, session_data, agent_data, "
                "created_at, updated_at) VALUES (%s, 'agent', 'basic-agent', %s, %s, %s, %s, %s)",
                [
                    (f"tie-filler-{i}", FILLER, _jsonb({"session_name": "f"}), _jsonb({}), BASE - 10_000 - i, None)
                    for i in range(FILLER_ROWS)
                ],
            )
        conn.execute(f"ANALYZE {SESSIONS}")
    try:
        yield [session_id for session_id, _ in rows]
    finally:
        with _connect(pg_dsn) as conn:
            conn.execute(f"DELETE FROM {SESSIONS} WHERE user_id IN (%s, %s)", (USER, FILLER))
            conn.execute(f"ANALYZE {SESSIONS}")


def _response(answer: httpx.Response, side: str) -> Response:
    headers = {k: v for k, v in answer.headers.items()}
    return Response(answer.status_code, headers, answer.content, side)  # type: ignore[arg-type]


def _with_query(dsn: str, name: str, value: str) -> str:
    parts = urlsplit(dsn)
    query = urlencode([*parse_qsl(parts.query), (name, value)], quote_via=quote)
    return urlunsplit(parts._replace(query=query))


@pytest.fixture(scope="module")
def sides(tied_rows: list[str], pg_dsn: str, fake_openai_url: str) -> Iterator[tuple[str, str]]:
    """A real AgentOS and a native service of their own, started after the rows are in: their
    drivers' statement caches start empty here, so the plan switches happen within this
    traffic whatever other tests asked the shared processes before."""
    legacy_dsn = _with_query(pg_dsn, "options", "-c plan_cache_mode=force_custom_plan")  # libpq: psycopg
    native_dsn = _with_query(pg_dsn, "plan_cache_mode", "force_generic_plan")  # asyncpg: a server setting
    legacy = AgentOSProcess(legacy_dsn, fake_openai_url, name="agentos-ties")
    try:
        native = NativeProcess({"AGNO_PG_DSN": native_dsn, "AGNO_DEFAULT_DB_ID": "main-db"}, "native-ties")
        try:
            yield legacy.url, native.url
        finally:
            native.stop()
    finally:
        legacy.stop()


@pytest.fixture(scope="module")
def traffic(sides: tuple[str, str]) -> list[tuple[Request, Response, Response]]:
    """Every page ROUNDS times from each side, the two asked one after the other."""
    legacy_url, native_url = sides
    pairs = []
    with httpx.Client(timeout=30) as http:
        for _round in range(ROUNDS):
            for target in PAGES:
                legacy = _response(http.get(legacy_url + target), "legacy")
                native = _response(http.get(native_url + target), "native")
                pairs.append((Request("GET", target), legacy, native))
    return pairs


@pytest.fixture(scope="module")
def shipped() -> Rules:
    return Rules.load(REPO / "config" / "comparator.yaml")


@pytest.fixture(scope="module")
def raw(shipped: Rules) -> Rules:
    """The shipped rules without any `sorted` rule: tied items compared as written."""
    routes = {route: dataclasses.replace(rules, sorted=None) for route, rules in shipped.routes.items()}
    return dataclasses.replace(shipped, routes=routes)


def _verdicts(traffic: list[tuple[Request, Response, Response]], rules: Rules) -> list[Comparison]:
    return [compare(legacy, native, rules, request=request) for request, legacy, native in traffic]


def _ids(response: Response) -> list[str]:
    return [item["session_id"] for item in json.loads(response.body)["data"]]


def test_tied_pages_are_answered_and_hold_the_ties(traffic: list[tuple[Request, Response, Response]]) -> None:
    """The traffic is what the test says: 200s, the right sizes, real ties on every page."""
    assert {(legacy.status, native.status) for _, legacy, native in traffic} == {(200, 200)}
    sizes = {request.target: len(_ids(native)) for request, _, native in traffic}
    assert sizes[PAGES[0]] == sum(GROUPS.values()) == 16
    assert sizes[PAGES[2]] == 4 and sizes[PAGES[4]] == 5


def test_raw_comparison_finds_tie_order_mismatches_and_the_rule_none(
    traffic: list[tuple[Request, Response, Response]], raw: Rules, shipped: Rules
) -> None:
    before = _verdicts(traffic, raw)
    after = _verdicts(traffic, shipped)
    raw_orders = [c for c in before if c.result == "mismatch"]
    rate_before = len(raw_orders) / len(before)
    outcomes = Counter((c.result, c.known) for c in after)
    mismatches_after = outcomes[("mismatch", None)]
    orders_seen = Counter(
        (request.target, tuple(_ids(side))) for request, legacy, native in traffic for side in (legacy, native)
    )
    print(
        f"\n[ties] {len(before)} pairs over {len(PAGES)} pages x {ROUNDS} rounds; distinct (page, order) seen: "
        f"{len(orders_seen)}; raw mismatches {len(raw_orders)} ({rate_before:.1%}), kinds "
        f"{sorted(Counter(d.kind for c in raw_orders for d in c.differences).items())}; with the rule: "
        f"{dict(outcomes)} -> mismatch rate {mismatches_after / len(after):.1%}"
    )
    for target in PAGES:  # how each side's own order moved over the rounds (0 = its first order)
        line = []
        for side in (1, 2):
            seen: dict[tuple[str, ...], int] = {}
            line.append(
                "".join(str(seen.setdefault(tuple(_ids(p[side])), len(seen))) for p in traffic if p[0].target == target)
            )
        print(f"[ties]   legacy {line[0]} native {line[1]}  {target}")
    assert raw_orders, "no pair differed in tie order: the traffic did not show the problem"
    # The plans are pinned, so the sides differ on every round, not only while one has switched.
    per_round = len(PAGES)
    rounds_with_orders = {i // per_round for i, c in enumerate(before) if c.result == "mismatch"}
    assert rounds_with_orders == set(range(ROUNDS)), sorted(rounds_with_orders)
    assert all({d.kind for d in c.differences} <= {"order", "value"} for c in raw_orders)
    assert mismatches_after == 0, [c.to_dict() for c in after if c.result == "mismatch"][:3]
    assert set(outcomes) <= {("match", None), ("expected", PAGE_EDGE_TIE)}
    for b, a in zip(before, after, strict=True):  # each raw mismatch was a tie: reordered, or cut by the page
        if b.result == "mismatch":
            assert (a.result == "match" and a.reason and "another order" in a.reason) or a.known == PAGE_EDGE_TIE
        else:
            assert (a.result, a.reason) == ("match", None)


def _swapped(response: Response, i: int, j: int) -> Response:
    body = json.loads(response.body)
    data = body["data"]
    data[i], data[j] = data[j], data[i]
    return dataclasses.replace(response, body=json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode())


def test_a_genuine_order_bug_is_still_a_mismatch(
    traffic: list[tuple[Request, Response, Response]], shipped: Rules
) -> None:
    """On the real traffic: two items whose sort keys differ (as the shipped rule reads the
    page's sort_by) swapped in the native body are a mismatch, whatever the ties did around them."""
    rule = shipped.routes["GET /sessions"].sorted
    assert rule is not None
    checked = 0
    for request, legacy, native in traffic:
        fields = rule.key_fields(request.query)
        if not fields:
            continue  # every item tied (sort_by=session_type here, or no ORDER BY): no order to break
        data = json.loads(native.body)["data"]
        keys = [next(item[f] for f in fields if item.get(f) is not None) for item in data]
        j = next((j for j in range(len(keys)) if keys[j] != keys[0]), None)
        if j is None:
            continue  # a page inside one tie (the first 5 of the run of 6)
        verdict = compare(legacy, _swapped(native, 0, j), shipped, request=request)
        assert verdict.result == "mismatch", (request.target, verdict.to_dict())
        checked += 1
    assert checked == ROUNDS * 8  # the pages spanning two keys or more
