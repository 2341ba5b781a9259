"""The benchmark's rows: the real agno seed, copied in SQL to the sizes the suite measures.

Every row starts as one written by the real agno 3.1.10 runtime (`seed`: agent, team and
workflow runs against the fake OpenAI server); this module only copies those rows with new
session and run ids (and `run_id`/`session_id` inside `run_data` to match), so the JSON shapes,
sizes and key orders are agno's own. Copies are plain `INSERT ... SELECT` over
`generate_series`, so 100,000 sessions take seconds, not agent runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

SESSIONS = "ai.agno_sessions"
RUNS = "ai.agno_runs"

# The ordinary seeded sessions (agent, team, workflow). The hand-made 2.x and null-data rows of
# the seed are edge cases for the contract tests, not typical traffic: they are not copied.
TEMPLATES = (
    "s-agent-1",
    "s-agent-2",
    "s-team-1",
    "s-team-2",
    "s-wf-1",
    "s-wf-2",
    "s-agent-meta",
    "s-agent-sdk",
    "s-agent-status",
)
RUNS_TEMPLATE = "s-agent-1"  # an agent session with two real runs: copied into the N-run sessions
WRITE_TEMPLATE = "s-agent-2"  # one run: the pre-created sessions the writes work on
COPY_PREFIX = "bench-s-"
USERS = 100  # copies are spread over this many users: `bench-user-0` .. `bench-user-99`
# Copies are newer than every seeded row, one second apart, so the first page is all copies.
COPY_BASE_TS = 1795600000
# The N-run sessions are older than everything: they never show on the list's first pages.
RUNS_BASE_TS = 1795000000


def runs_session_id(runs: int) -> str:
    return f"bench-runs-{runs}"


@dataclass(frozen=True)
class Counts:
    sessions: int
    runs: int


def counts(dsn: str) -> Counts:
    with psycopg.connect(dsn) as conn:
        sessions = conn.execute(f"SELECT count(*) FROM {SESSIONS}").fetchone()
        runs = conn.execute(f"SELECT count(*) FROM {RUNS}").fetchone()
    assert sessions is not None and runs is not None
    return Counts(int(sessions[0]), int(runs[0]))


def copy_sessions(
    dsn: str,
    first: int,
    count: int,
    *,
    prefix: str = COPY_PREFIX,
    templates: tuple[str, ...] = TEMPLATES,
    base_ts: int = COPY_BASE_TS,
) -> None:
    """Sessions `prefix{first}` .. `prefix{first+count-1}`, each a copy of a template (cycled)
    with its runs, a user among `USERS`, and its own created_at/updated_at."""
    if count <= 0:
        return
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "CREATE TEMP TABLE bench_templates AS SELECT row_number() OVER (ORDER BY session_id) - 1 AS k, * "
            f"FROM {SESSIONS} WHERE session_id = ANY(%s)",
            (list(templates),),
        )
        row = conn.execute("SELECT count(*) FROM bench_templates").fetchone()
        n_templates = int(row[0]) if row else 0
        if n_templates == 0:
            raise RuntimeError(f"none of the template sessions {templates} is in the database: seed first")
        params = {"first": first, "last": first + count - 1, "n": n_templates, "prefix": prefix, "base": base_ts}
        conn.execute(
            f"""INSERT INTO {SESSIONS} (session_id, session_type, agent_id, team_id, workflow_id, user_id,
                    session_data, agent_data, team_data, workflow_data, metadata, summary, created_at, updated_at)
                SELECT %(prefix)s || g, t.session_type, t.agent_id, t.team_id, t.workflow_id,
                       'bench-user-' || (g %% {USERS}), t.session_data, t.agent_data, t.team_data, t.workflow_data,
                       t.metadata, t.summary, %(base)s + g, %(base)s + g + (g %% 7) * 3
                FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g
                JOIN bench_templates t ON t.k = g %% %(n)s""",
            params,
        )
        conn.execute(
            f"""INSERT INTO {RUNS} (run_id, session_id, run_type, agent_id, team_id, workflow_id, user_id,
                    parent_run_id, status, run_index, run_data, created_at, updated_at)
                SELECT r.run_id || '-' || %(prefix)s || g, %(prefix)s || g, r.run_type, r.agent_id, r.team_id,
                       r.workflow_id, 'bench-user-' || (g %% {USERS}),
                       CASE WHEN r.parent_run_id IS NULL THEN NULL ELSE r.parent_run_id || '-' || %(prefix)s || g END,
                       r.status, r.run_index,
                       jsonb_set(jsonb_set(r.run_data, '{{run_id}}', to_jsonb(r.run_id || '-' || %(prefix)s || g)),
                                 '{{session_id}}', to_jsonb(%(prefix)s || g)),
                       %(base)s + g + (r.created_at - t.created_at), %(base)s + g + (r.created_at - t.created_at)
                FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g
                JOIN bench_templates t ON t.k = g %% %(n)s
                JOIN {RUNS} r ON r.session_id = t.session_id""",
            params,
        )
        conn.execute("DROP TABLE bench_templates")


def grow_to(dsn: str, total_sessions: int) -> int:
    """Add copies until the sessions table holds `total_sessions` rows; returns the rows added."""
    have = counts(dsn).sessions
    missing = total_sessions - have
    if missing <= 0:
        return 0
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            f"SELECT coalesce(max(substr(session_id, {len(COPY_PREFIX) + 1})::bigint) + 1, 0) FROM {SESSIONS} "
            "WHERE session_id LIKE %s",
            (COPY_PREFIX + "%",),
        ).fetchone()
    first = int(row[0]) if row else 0
    copy_sessions(dsn, first, missing)
    analyze(dsn)
    return missing


def add_runs_session(dsn: str, runs: int) -> str:
    """Session `bench-runs-{runs}`: a copy of `RUNS_TEMPLATE` holding `runs` runs (its real runs
    cycled, each with a new run id, run_index and created_at). Returns the session id."""
    session_id = runs_session_id(runs)
    created = RUNS_BASE_TS + runs
    with psycopg.connect(dsn) as conn:
        conn.execute(f"DELETE FROM {SESSIONS} WHERE session_id = %s", (session_id,))
        conn.execute(
            f"""INSERT INTO {SESSIONS} (session_id, session_type, agent_id, team_id, workflow_id, user_id,
                    session_data, agent_data, team_data, workflow_data, metadata, summary, created_at, updated_at)
                SELECT %s, session_type, agent_id, team_id, workflow_id, 'bench-user-runs', session_data,
                       agent_data, team_data, workflow_data, metadata, summary, %s, %s
                FROM {SESSIONS} WHERE session_id = %s""",
            (session_id, created, created + runs + 1, RUNS_TEMPLATE),
        )
        conn.execute(
            f"""WITH template AS (
                    SELECT row_number() OVER (ORDER BY run_index, created_at, run_id) - 1 AS k,
                           count(*) OVER () AS n, * FROM {RUNS} WHERE session_id = %(template)s)
                INSERT INTO {RUNS} (run_id, session_id, run_type, agent_id, team_id, workflow_id, user_id,
                    parent_run_id, status, run_index, run_data, created_at, updated_at)
                SELECT %(sid)s || '-run-' || j, %(sid)s, t.run_type, t.agent_id, t.team_id, t.workflow_id,
                       'bench-user-runs', NULL, t.status, j,
                       jsonb_set(jsonb_set(jsonb_set(t.run_data, '{{run_id}}', to_jsonb(%(sid)s || '-run-' || j)),
                                 '{{session_id}}', to_jsonb(%(sid)s::text)), '{{created_at}}', to_jsonb(%(ts)s + 1 + j)),
                       %(ts)s + 1 + j, %(ts)s + 1 + j
                FROM generate_series(0, %(runs)s - 1) AS j JOIN template t ON t.k = j %% t.n""",
            {"template": RUNS_TEMPLATE, "sid": session_id, "ts": created, "runs": runs},
        )
    return session_id


def run_id_of(session_id: str, index: int) -> str:
    """The id of run `index` of a session made by `add_runs_session`."""
    return f"{session_id}-run-{index}"


def add_write_pool(dsn: str, prefix: str, count: int) -> None:
    """`count` sessions `prefix0..` (copies of `WRITE_TEMPLATE`, one run each) for rename, PATCH
    and delete. Made after the reads so the read figures are taken at exactly `--sessions` rows."""
    copy_sessions(dsn, 0, count, prefix=prefix, templates=(WRITE_TEMPLATE,), base_ts=RUNS_BASE_TS - 10_000_000)


def analyze(dsn: str) -> None:
    """`VACUUM (ANALYZE)` of both tables: the state autovacuum keeps a live table in (agno's
    tables only grow, and Postgres vacuums insert-only tables too). Without it, freshly copied
    rows have no visibility map, so agno's exact `count(*)` reads the whole heap instead of the
    smallest index, which no running deployment pays; both sides read the same tables."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"VACUUM (ANALYZE) {SESSIONS}")
        conn.execute(f"VACUUM (ANALYZE) {RUNS}")


def build(dsn: str, sessions: int, runs_sizes: tuple[int, ...] = (20, 1000)) -> Counts:
    """From a seeded database: the N-run sessions, then copies up to `sessions` rows in all."""
    for n in runs_sizes:
        add_runs_session(dsn, n)
    grow_to(dsn, sessions)
    analyze(dsn)
    return counts(dsn)
