"""A team session's derived `session_name` on the list: the first run that is not a member run.

agno writes a team's member runs before the team's own run (run_index 0 is a member's), and
derives the name of an unnamed team session from the first run whose `agent_id` is falsy. The
native list fetches one run per unnamed session for its name, skipping in SQL the runs that
certainly are member runs (`store.NOT_A_MEMBER_RUN`); every other shape takes the full
derivation. Each case here is a hand-written team session on the shared database, listed
through both real sides: the pages must be byte-identical.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest

from tests.contract.differential import Pair, body_of

USER = "team-names-user"


def _run(run_id: str, agent_id: Any, content: str | None, input_: Any = None) -> dict[str, Any]:
    run: dict[str, Any] = {"run_id": run_id, "team_id": "t", "status": "COMPLETED", "created_at": 1795550000}
    if agent_id is not None:
        run["agent_id"] = agent_id
    if content is not None:
        run["messages"] = [{"role": "system", "content": "sys"}, {"role": "user", "content": content}]
    if input_ is not None:
        run["input"] = input_
    return run


# session id suffix -> the runs in run_index order, and the name agno derives
CASES: dict[str, tuple[list[dict[str, Any]], str]] = {
    "member-first": ([_run("a", "member", "member text"), _run("b", None, "team text")], "team text"),
    "members-only": ([_run("a", "member", "one"), _run("b", "member", "two")], ""),
    "empty-agent-id": ([_run("a", "", "not a member"), _run("b", None, "team text")], "not a member"),
    "numeric-agent-id": ([_run("a", 5, "truthy"), _run("b", None, "team text")], "team text"),
    "false-agent-id": ([_run("a", False, "falsy"), _run("b", None, "team text")], "falsy"),
    "member-then-input": (
        [_run("a", "member", "m"), _run("b", None, None, {"input_content": "from input"})],
        json.dumps({"input_content": "from input"}, indent=2),  # agno's stringify_input_content
    ),
    "member-then-undecided": (
        [_run("a", "member", "m"), _run("b", None, None), _run("c", None, "third")],
        "third",
    ),
}


def _remove(dsn: str, prefix: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("DELETE FROM ai.agno_runs WHERE starts_with(session_id, $1)", prefix)
            await conn.execute("DELETE FROM ai.agno_sessions WHERE starts_with(session_id, $1)", prefix)
        finally:
            await conn.close()

    asyncio.run(run())


def _insert(dsn: str, prefix: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            async with conn.transaction():
                for n, (suffix, (runs, _)) in enumerate(CASES.items()):
                    sid = f"{prefix}{suffix}"
                    await conn.execute(
                        "INSERT INTO ai.agno_sessions (session_id, session_type, team_id, user_id, session_data, "
                        "created_at, updated_at) VALUES ($1, 'team', 't', $2, '{}'::jsonb, $3, $3)",
                        sid,
                        USER,
                        1795550000 + n,
                    )
                    for index, r in enumerate(runs):
                        await conn.execute(
                            "INSERT INTO ai.agno_runs (run_id, session_id, run_type, agent_id, team_id, user_id, "
                            "status, run_index, run_data, created_at, updated_at) "
                            "VALUES ($1, $2, 'team', NULL, 't', $3, 'COMPLETED', $4, $5::jsonb, $6, $6)",
                            f"{sid}-{r['run_id']}",
                            sid,
                            USER,
                            index,
                            json.dumps({**r, "run_id": f"{sid}-{r['run_id']}", "session_id": sid}),
                            1795550000 + index,
                        )
        finally:
            await conn.close()

    asyncio.run(run())


@pytest.fixture(scope="module")
def team_sessions(pg_dsn: str) -> Iterator[str]:
    """The hand-written rows, removed afterwards: shapes agno never writes (an `agent_id` of 5)
    must not reach the other tests of the shared database (the export/import round trip
    validates every run it reads)."""
    prefix = "team-names-"
    _insert(pg_dsn, prefix)
    try:
        yield prefix
    finally:
        _remove(pg_dsn, prefix)


@pytest.mark.parametrize("query", ["?type=team&user_id=" + USER, "?user_id=" + USER + "&sort_by=session_id&limit=3"])
def test_team_names_on_the_list(pair: Pair, team_sessions: str, query: str) -> None:
    lr, nr = pair.both("GET", "/sessions" + query, "/sessions" + query)
    assert lr.status == 200
    pair.same(lr, nr)


def test_the_cases_are_what_agno_derives(pair: Pair, team_sessions: str) -> None:
    """The expected names are agno's own (so the list test compares pages that exercise each rule)."""
    lr, _ = pair.both("GET", f"/sessions?type=team&user_id={USER}&limit=50", f"/sessions?type=team&user_id={USER}")
    names = {item["session_id"][len(team_sessions) :]: item["session_name"] for item in body_of(lr)["data"]}
    assert names == {suffix: name for suffix, (_, name) in CASES.items()}
