"""Seed a Postgres database with realistic agno 3.1.10 data, by actually running agno.

The agents, team and workflow are the very objects the legacy AgentOS serves
(`harness.agentos_app.build_components`), writing through agno's own `PostgresDb` (schema
``ai``, tables ``agno_sessions`` / ``agno_runs``); the model is the fake OpenAI server
(`harness.fake_openai`). A few rows are then adjusted with plain SQL for edge cases agno
does not produce by itself (legacy 2.x rows, JSON-null vs SQL-NULL data, odd run statuses).

Sessions in the main database (`seed`), in creation-time order (``created_at`` = 1795550000 + i*60,
``updated_at`` = ``created_at`` + 5 except where noted):

==  ================  ========  ======================================================================
i   session_id        user_id   content
==  ================  ========  ======================================================================
0   s-agent-1         user-1    agent, 2 runs: "What tools do you have?", "Second question"
1   s-agent-2         user-2    agent, 1 run: "Hello from user 2"
2   s-team-1          user-1    team, 1 run: "Team question"
3   s-team-2          user-3    team "Please DELEGATE this": member run row (agent_id member-agent,
                                parent_run_id = team run) at run_index 0, then the team run
4   s-wf-1            user-1    workflow, input "Workflow input text"
5   s-wf-2            user-2    workflow, dict input {"topic": "dict input", "n": 2} (agno accepts it;
                                the step agent cannot turn a dict into a message, so it answers "Echo: ")
6   s-agent-meta      user-4    agent run with session metadata (floats, non-ASCII, nested; set via
                                `Agent(metadata=...)`, agno copies it into a new session), nested
                                session_state, and a `summary` column written by SQL
7   s-agent-sdk       user-5    agent run; agent_data gets "sdk": "agno-py" (SQL)
8   s-agent-status    user-2    agent, 3 runs with statuses ERROR, CANCELLED, COMPLETED (SQL on both
                                the status column and run_data.status)
9   legacy-1          u1        hand-made 2.x row: runs only in the legacy `runs` jsonb column
                                (2 runs), updated_at NULL, summary + session_state {"x": 1}
10  legacy-2          user-1    2 real runs in agno_runs + a legacy `runs` blob holding a legacy-only
                                run and a stale copy of the first real run (same run_id)
11  null-data-1       user-6    agent row, session_data = JSON null ('null'::jsonb), no runs
12  sqlnull-data-1    user-6    agent row, session_data = SQL NULL, no runs
==  ================  ========  ======================================================================

Second database (`seed_second`, served only by the multi-db AgentOS as db id ``second-db``):
``s-second-1`` (user-1), one run of agent ``second-agent``: "Hello second db" (i = 20).

Run ids of the main runs are fixed (`RUN_IDS`); the member run in ``s-team-2`` and the workflow step
runs get ids from agno. Runs inside a session get created_at = session created_at + 1, + 2, ... in
run order, and every integer ``created_at`` inside run_data (run, messages, step runs) is set to it.
"""

from __future__ import annotations

import copy
import json
import os
import time
from collections.abc import Iterable
from typing import Any

from harness.postgres import libpq_dsn, sqlalchemy_url

# agno must not phone home; set before agno is imported.
os.environ.setdefault("AGNO_TELEMETRY", "false")

# ---------------------------------------------------------------------------------------------
# Session ids (fixed, referenced by tests)
# ---------------------------------------------------------------------------------------------
S_AGENT_1 = "s-agent-1"
S_AGENT_2 = "s-agent-2"
S_TEAM_1 = "s-team-1"
S_TEAM_2 = "s-team-2"
S_WF_1 = "s-wf-1"
S_WF_2 = "s-wf-2"
S_AGENT_META = "s-agent-meta"
S_AGENT_SDK = "s-agent-sdk"
S_AGENT_STATUS = "s-agent-status"
LEGACY_1 = "legacy-1"
LEGACY_2 = "legacy-2"
NULL_DATA_1 = "null-data-1"
SQLNULL_DATA_1 = "sqlnull-data-1"
S_SECOND_1 = "s-second-1"

# Creation order in the main database; the index drives created_at (see `_normalize_times`).
SESSION_ORDER = [
    S_AGENT_1,
    S_AGENT_2,
    S_TEAM_1,
    S_TEAM_2,
    S_WF_1,
    S_WF_2,
    S_AGENT_META,
    S_AGENT_SDK,
    S_AGENT_STATUS,
    LEGACY_1,
    LEGACY_2,
    NULL_DATA_1,
    SQLNULL_DATA_1,
]
SECOND_SESSION_ORDER = [S_SECOND_1]
SECOND_INDEX_OFFSET = 20  # s-second-1 gets BASE_TS + 20*60, distinct from every main session

ALL_SESSION_IDS = SESSION_ORDER + SECOND_SESSION_ORDER

SESSION_USERS = {
    S_AGENT_1: "user-1",
    S_AGENT_2: "user-2",
    S_TEAM_1: "user-1",
    S_TEAM_2: "user-3",
    S_WF_1: "user-1",
    S_WF_2: "user-2",
    S_AGENT_META: "user-4",
    S_AGENT_SDK: "user-5",
    S_AGENT_STATUS: "user-2",
    LEGACY_1: "u1",
    LEGACY_2: "user-1",
    NULL_DATA_1: "user-6",
    SQLNULL_DATA_1: "user-6",
    S_SECOND_1: "user-1",
}

# Sessions whose updated_at column is SQL NULL (a 2.x row never updated).
NULL_UPDATED_AT = {LEGACY_1}

BASE_TS = 1795550000  # 2026-11-24T15:13:20Z
SESSION_STEP = 60  # seconds between consecutive sessions
UPDATED_DELTA = 5  # updated_at = created_at + 5

# Fixed run ids (agno accepts run_id= on run()).
RUN_IDS = {
    "agent-1a": "run-s-agent-1-a",
    "agent-1b": "run-s-agent-1-b",
    "agent-2": "run-s-agent-2",
    "team-1": "run-s-team-1",
    "team-2": "run-s-team-2",  # its member run has an agno-generated id
    "wf-1": "run-s-wf-1",
    "wf-2": "run-s-wf-2",
    "meta": "run-s-agent-meta",
    "sdk": "run-s-agent-sdk",
    "status-error": "run-status-error",
    "status-cancelled": "run-status-cancelled",
    "status-completed": "run-status-completed",
    "legacy-1a": "run-legacy-1-a",  # legacy blob only
    "legacy-1b": "run-legacy-1-b",  # legacy blob only
    "legacy-2-old": "run-legacy-2-old",  # legacy blob only
    "legacy-2a": "run-legacy-2-a",  # agno_runs AND (stale copy) legacy blob
    "legacy-2b": "run-legacy-2-b",  # agno_runs only
    "second": "run-s-second-1",
}

WF_DICT_INPUT = {"topic": "dict input", "n": 2}

META_METADATA = {
    "zzz": 1,
    "a": 1e-05,
    "pi": 3.141592653589793,
    "big": 1e16,
    "tiny": 1e-6,
    "name": "Zoë — 東京 ✓",
    "bb": {"y": 1, "x": 2},
}
META_SESSION_STATE = {"zeta": {"b": [1, 2.5, "três"], "a": None}, "alpha": {"nested": {"deep": True}}, "count": 3}
META_SUMMARY = {"summary": "Résumé… of the chat", "topics": ["t1", "ü"], "updated_at": "2025-10-21T14:30:00+00:00"}

LEGACY_SUMMARY = {"summary": "legacy summary", "updated_at": "2024-01-01T00:00:00"}
LEGACY_SESSION_DATA = {"session_state": {"x": 1}}

SDK_NAME = "agno-py"

STATUS_RUNS = [  # (run id key, input, forced status or None)
    ("status-error", "This run failed", "ERROR"),
    ("status-cancelled", "This run was cancelled", "CANCELLED"),
    ("status-completed", "This run completed", None),
]

SCHEMA = "ai"
SESSIONS = f"{SCHEMA}.agno_sessions"
RUNS = f"{SCHEMA}.agno_runs"


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _connect(db_url: str):
    import psycopg

    return psycopg.connect(libpq_dsn(db_url), autocommit=True)


def _jsonb(value: Any):
    from psycopg.types.json import Jsonb

    return Jsonb(value)


def _table_exists(conn, qualified: str) -> bool:
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (qualified,)).fetchone()[0]


def _delete_sessions(conn, session_ids: Iterable[str]) -> None:
    """Make seeding re-runnable: drop earlier copies of the seeded sessions (runs cascade)."""
    ids = list(session_ids)
    if _table_exists(conn, RUNS):
        conn.execute(f"DELETE FROM {RUNS} WHERE session_id = ANY(%s)", (ids,))
    if _table_exists(conn, SESSIONS):
        conn.execute(f"DELETE FROM {SESSIONS} WHERE session_id = ANY(%s)", (ids,))


def _set_all_created_at(value: Any, ts: int) -> Any:
    """Every integer `created_at` inside a run dict (run, messages, step runs, tools) -> ts."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k == "created_at" and isinstance(v, int) and not isinstance(v, bool):
                out[k] = ts
            else:
                out[k] = _set_all_created_at(v, ts)
        return out
    if isinstance(value, list):
        return [_set_all_created_at(v, ts) for v in value]
    return value


def _merged_run_ids(table_ids: list[str], legacy_runs: list | None) -> list[str]:
    """agno's merge order (contract 5.4): legacy blob order, then table-only runs."""
    if not legacy_runs:
        return list(table_ids)
    out: list[str] = []
    seen: set[str] = set()
    for run in legacy_runs:
        rid = run.get("run_id") if isinstance(run, dict) else None
        if rid and rid not in seen:
            out.append(rid)
            seen.add(rid)
    out += [rid for rid in table_ids if rid not in seen]
    return out


def _normalize_times(conn, order: list[str], index_offset: int = 0) -> None:
    """Give every seeded session a distinct created_at and its runs distinct, ordered ones.

    Why: agno stamps rows with the wall clock, so a seed that runs in one second leaves many
    sessions with the same created_at, and list ordering (ORDER BY created_at, no tiebreaker)
    would then be whatever Postgres returns. Here session i gets BASE_TS + i*60 and
    updated_at = created_at + 5 (NULL for NULL_UPDATED_AT); its runs, in agno's read order
    (run_index, created_at, run_id, merged with the legacy blob), get created_at + 1, + 2, ...
    both in the agno_runs columns and in every integer "created_at" inside run_data / the blob.
    """
    has_legacy = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = 'agno_sessions' AND column_name = 'runs')",
        (SCHEMA,),
    ).fetchone()[0]
    has_runs_table = _table_exists(conn, RUNS)
    for i, session_id in enumerate(order):
        created = BASE_TS + (index_offset + i) * SESSION_STEP
        updated = None if session_id in NULL_UPDATED_AT else created + UPDATED_DELTA
        conn.execute(
            f"UPDATE {SESSIONS} SET created_at = %s, updated_at = %s WHERE session_id = %s",
            (created, updated, session_id),
        )
        table_runs: list[tuple[str, dict]] = []
        if has_runs_table:
            table_runs = conn.execute(
                f"SELECT run_id, run_data FROM {RUNS} WHERE session_id = %s "
                "ORDER BY run_index ASC, created_at ASC, run_id ASC",
                (session_id,),
            ).fetchall()
        legacy_runs = None
        if has_legacy:
            row = conn.execute(f"SELECT runs FROM {SESSIONS} WHERE session_id = %s", (session_id,)).fetchone()
            legacy_runs = row[0] if row else None
        ordered = _merged_run_ids([rid for rid, _ in table_runs], legacy_runs)
        run_ts = {rid: created + 1 + k for k, rid in enumerate(ordered)}
        for rid, data in table_runs:
            ts = run_ts[rid]
            conn.execute(
                f"UPDATE {RUNS} SET created_at = %s, updated_at = %s, run_data = %s WHERE run_id = %s",
                (ts, ts, _jsonb(_set_all_created_at(data, ts)), rid),
            )
        if legacy_runs:
            new_blob = [_set_all_created_at(r, run_ts.get(r.get("run_id"), created + 1)) for r in legacy_runs]
            conn.execute(f"UPDATE {SESSIONS} SET runs = %s WHERE session_id = %s", (_jsonb(new_blob), session_id))


def _legacy_run(template: dict, *, run_id: str, session_id: str, user_id: str, question: str, answer: str) -> dict:
    """A 2.x-style run dict: the shape of a real agno agent run, with fixed ids everywhere."""
    run = copy.deepcopy(template)
    run["run_id"] = run_id
    run["session_id"] = session_id
    run["user_id"] = user_id
    run["input"] = {"input_content": question}
    run["content"] = answer
    run["status"] = "COMPLETED"
    provider = {"id": f"chatcmpl-{run_id}"}
    run["model_provider_data"] = provider
    messages = []
    for n, msg in enumerate(run.get("messages") or [], start=1):
        msg = dict(msg)
        msg["id"] = f"{run_id}-msg-{n}"
        if msg.get("role") == "user":
            msg["content"] = question
        elif msg.get("role") == "assistant":
            msg["content"] = answer
            msg["provider_data"] = provider
        messages.append(msg)
    run["messages"] = messages
    return run


# ---------------------------------------------------------------------------------------------
# seeding
# ---------------------------------------------------------------------------------------------


def seed(db_url: str, openai_url: str) -> None:
    """Seed the main database (see the module docstring). `db_url` may be libpq or SQLAlchemy form."""
    from agno.agent import Agent

    from harness.agentos_app import build_components

    sa_url = sqlalchemy_url(libpq_dsn(db_url))
    with _connect(db_url) as conn:
        _delete_sessions(conn, SESSION_ORDER)

    c = build_components(sa_url, openai_url)
    agent, team, workflow, db = c["agent"], c["team"], c["workflow"], c["db"]

    def agent_run(a, text: str, session_id: str, run_key: str, **kw: Any) -> None:
        out = a.run(text, session_id=session_id, user_id=SESSION_USERS[session_id], run_id=RUN_IDS[run_key], **kw)
        if getattr(out, "status", None) is not None and str(getattr(out.status, "value", out.status)) == "ERROR":
            raise RuntimeError(f"agno run failed while seeding {session_id}: {out.content!r}")

    # --- real runs through agno -------------------------------------------------------------
    agent_run(agent, "What tools do you have?", S_AGENT_1, "agent-1a")
    agent_run(agent, "Second question", S_AGENT_1, "agent-1b")
    agent_run(agent, "Hello from user 2", S_AGENT_2, "agent-2")
    agent_run(team, "Team question", S_TEAM_1, "team-1")
    agent_run(team, "Please DELEGATE this", S_TEAM_2, "team-2")
    workflow.run(input="Workflow input text", session_id=S_WF_1, user_id=SESSION_USERS[S_WF_1], run_id=RUN_IDS["wf-1"])
    # agno's Workflow accepts a dict input (stored as-is in run_data.input).
    workflow.run(input=dict(WF_DICT_INPUT), session_id=S_WF_2, user_id=SESSION_USERS[S_WF_2], run_id=RUN_IDS["wf-2"])

    # Session metadata: agno copies Agent.metadata into a NEW session (run(metadata=...) only
    # lands in the run's metadata), so use a twin of basic-agent that carries the metadata.
    meta_agent = Agent(
        id=agent.id,
        name=agent.name,
        model=agent.model,
        db=db,
        markdown=True,
        metadata=copy.deepcopy(META_METADATA),
    )
    agent_run(
        meta_agent,
        "Tell me about metadata",
        S_AGENT_META,
        "meta",
        session_state=copy.deepcopy(META_SESSION_STATE),
        metadata={"run_tag": "meta-run", "ratio": 0.5},
    )
    agent_run(agent, "SDK session question", S_AGENT_SDK, "sdk")
    for key, text, _status in STATUS_RUNS:
        agent_run(agent, text, S_AGENT_STATUS, key)
    agent_run(agent, "Legacy two first", LEGACY_2, "legacy-2a")
    agent_run(agent, "Legacy two second", LEGACY_2, "legacy-2b")

    # --- SQL adjustments for edge cases ---------------------------------------------------------
    with _connect(db_url) as conn:
        conn.execute(
            f"UPDATE {SESSIONS} SET summary = %s WHERE session_id = %s",
            (_jsonb(META_SUMMARY), S_AGENT_META),
        )
        conn.execute(
            f"UPDATE {SESSIONS} SET agent_data = agent_data || %s WHERE session_id = %s",
            (_jsonb({"sdk": SDK_NAME}), S_AGENT_SDK),
        )
        for key, _text, status in STATUS_RUNS:
            if status:
                conn.execute(
                    f"UPDATE {RUNS} SET status = %s, run_data = jsonb_set(run_data, '{{status}}', to_jsonb(%s::text)) "
                    "WHERE run_id = %s",
                    (status, status, RUN_IDS[key]),
                )

        # 2.x legacy column (test-data setup: 3.x tolerates and merges it, contract 5.4).
        conn.execute(f"ALTER TABLE {SESSIONS} ADD COLUMN IF NOT EXISTS runs jsonb")
        template, agent_data = conn.execute(
            f"SELECT r.run_data, s.agent_data FROM {RUNS} r JOIN {SESSIONS} s USING (session_id) WHERE r.run_id = %s",
            (RUN_IDS["agent-2"],),
        ).fetchone()

        legacy_1_runs = [
            _legacy_run(
                template,
                run_id=RUN_IDS["legacy-1a"],
                session_id=LEGACY_1,
                user_id="u1",
                question="legacy question",
                answer="Echo: legacy question",
            ),
            _legacy_run(
                template,
                run_id=RUN_IDS["legacy-1b"],
                session_id=LEGACY_1,
                user_id="u1",
                question="legacy follow-up",
                answer="Echo: legacy follow-up",
            ),
        ]
        conn.execute(
            f"INSERT INTO {SESSIONS} (session_id, session_type, agent_id, user_id, session_data, agent_data, "
            "metadata, summary, runs, created_at, updated_at) "
            "VALUES (%s, 'agent', 'basic-agent', %s, %s, %s, NULL, %s, %s, %s, NULL)",
            (
                LEGACY_1,
                SESSION_USERS[LEGACY_1],
                _jsonb(LEGACY_SESSION_DATA),
                _jsonb(agent_data),
                _jsonb(LEGACY_SUMMARY),
                _jsonb(legacy_1_runs),
                BASE_TS,
            ),
        )

        # legacy-2: blob = [legacy-only old run, stale copy of run-legacy-2-a]; agno_runs has
        # run-legacy-2-a (wins) and run-legacy-2-b (appended). Merged: old, 2-a (table), 2-b.
        (real_a,) = conn.execute(f"SELECT run_data FROM {RUNS} WHERE run_id = %s", (RUN_IDS["legacy-2a"],)).fetchone()
        stale_a = copy.deepcopy(real_a)
        stale_a["content"] = "Stale copy from the legacy blob"
        for msg in stale_a.get("messages") or []:
            if msg.get("role") == "assistant":
                msg["content"] = "Stale copy from the legacy blob"
        legacy_2_runs = [
            _legacy_run(
                template,
                run_id=RUN_IDS["legacy-2-old"],
                session_id=LEGACY_2,
                user_id=SESSION_USERS[LEGACY_2],
                question="Legacy-only old run",
                answer="Echo: Legacy-only old run",
            ),
            stale_a,
        ]
        conn.execute(f"UPDATE {SESSIONS} SET runs = %s WHERE session_id = %s", (_jsonb(legacy_2_runs), LEGACY_2))

        # JSON null vs SQL NULL session_data.
        for sid, data_sql in ((NULL_DATA_1, "'null'::jsonb"), (SQLNULL_DATA_1, "NULL")):
            conn.execute(
                f"INSERT INTO {SESSIONS} (session_id, session_type, agent_id, user_id, session_data, agent_data, "
                f"metadata, summary, created_at, updated_at) "
                f"VALUES (%s, 'agent', 'basic-agent', %s, {data_sql}, %s, 'null'::jsonb, 'null'::jsonb, %s, %s)",
                (sid, SESSION_USERS[sid], _jsonb(agent_data), BASE_TS, BASE_TS),
            )

        _normalize_times(conn, SESSION_ORDER)


def seed_second(db_url: str, openai_url: str) -> None:
    """Seed the second database (db id ``second-db``): one agent session ``s-second-1``."""
    from harness.agentos_app import build_components

    with _connect(db_url) as conn:
        _delete_sessions(conn, SECOND_SESSION_ORDER)
    # Only the second agent is used; the main components point at the same url (never run).
    sa_url = sqlalchemy_url(libpq_dsn(db_url))
    c = build_components(sa_url, openai_url, second_db_url=sa_url)
    c["second_agent"].run(
        "Hello second db", session_id=S_SECOND_1, user_id=SESSION_USERS[S_SECOND_1], run_id=RUN_IDS["second"]
    )
    with _connect(db_url) as conn:
        _normalize_times(conn, SECOND_SESSION_ORDER, index_offset=SECOND_INDEX_OFFSET)


if __name__ == "__main__":  # python -m harness.seed DB_URL OPENAI_URL [SECOND_DB_URL]
    import sys

    t0 = time.monotonic()
    seed(sys.argv[1], sys.argv[2])
    if len(sys.argv) > 3:
        seed_second(sys.argv[3], sys.argv[2])
    print(json.dumps({"seeded": ALL_SESSION_IDS, "seconds": round(time.monotonic() - t0, 2)}))
