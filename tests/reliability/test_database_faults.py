"""Database faults under load: ~2,000 concurrent mixed writes (creates, renames, patches, deletes)
against the native service as its own process, with its Postgres stopped (`pg_ctl stop`) and
started again in the middle of the run.

What must hold:

* every acknowledged write is in Postgres afterwards (the rows are read with SQL, not through the
  service): each session's last write, retried until acknowledged, is exactly what the row holds;
* nothing is half-applied: a PATCH writes its version into the name, the state and the metadata
  in one statement, and no row has them disagree;
* while Postgres is away the answer is 503 JSON with Retry-After (never a 500), and no request
  takes longer than the configured request timeout;
* the service recovers by itself: the same process (no restart) acknowledges writes again.
"""

from __future__ import annotations

import asyncio
import collections
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest

from session_service.errors import RETRY_AFTER_S
from tests.reliability.conftest import ServiceProcess, StoppablePg

SESSIONS = 200
OPS_PER_SESSION = 10  # 2,000 acknowledged writes in all
CONCURRENCY = 16
REQUEST_TIMEOUT_S = 5
OUTAGE_AFTER_OPS = 500  # acknowledged writes before Postgres is stopped
OUTAGE_S = 3.0
MAX_ATTEMPTS = 400  # per write, 50 ms apart after a 503: far more than the outage needs


@dataclass
class Op:
    method: str
    path: str
    body: dict[str, Any] | None
    # Answers that acknowledge this write; the second set only for a retry (the first attempt
    # may have committed before its answer was lost: a create then exists, a delete is done).
    ok: frozenset[int]
    ok_on_retry: frozenset[int] = frozenset()


@dataclass
class Tally:
    acked: int = 0
    attempts: int = 0
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    slowest_s: float = 0.0
    bad: list[str] = field(default_factory=list)
    unavailable_bodies: set[str] = field(default_factory=set)


def chain(sid: str, deleted: bool) -> tuple[list[Op], dict[str, Any] | None]:
    """A session's writes in order, and the row they must leave (None: no row)."""
    ops = [
        Op(
            "POST",
            "/sessions?type=agent",
            {"session_id": sid, "agent_id": "fault-agent", "session_name": "v0", "session_state": {"v": 0}},
            frozenset({201}),
            frozenset({409}),
        )
    ]
    expected: dict[str, Any] = {"name": "v0", "state": 0, "metadata": None}
    for v in range(1, OPS_PER_SESSION - (1 if deleted else 0)):
        if v % 3 == 2:
            ops.append(Op("POST", f"/sessions/{sid}/rename", {"session_name": f"v{v}"}, frozenset({200})))
            expected["name"] = f"v{v}"
        else:
            body = {"session_name": f"v{v}", "session_state": {"v": v}, "metadata": {"v": v}}
            ops.append(Op("PATCH", f"/sessions/{sid}", body, frozenset({200})))
            expected = {"name": f"v{v}", "state": v, "metadata": v}
    if deleted:
        ops.append(Op("DELETE", f"/sessions/{sid}", None, frozenset({204}), frozenset({404})))
        return ops, None
    return ops, expected


async def run_chain(client: httpx.AsyncClient, ops: list[Op], tally: Tally, gate: asyncio.Semaphore) -> None:
    for op in ops:
        async with gate:
            for attempt in range(MAX_ATTEMPTS):
                started = time.monotonic()
                resp = await client.request(op.method, op.path, json=op.body)
                elapsed = time.monotonic() - started
                tally.attempts += 1
                tally.statuses[resp.status_code] += 1
                tally.slowest_s = max(tally.slowest_s, elapsed)
                if resp.status_code in op.ok or (attempt and resp.status_code in op.ok_on_retry):
                    tally.acked += 1
                    break
                if resp.status_code == 503:
                    if resp.headers.get("Retry-After") != str(RETRY_AFTER_S):
                        tally.bad.append(f"{op.method} {op.path}: 503 without Retry-After")
                    tally.unavailable_bodies.add(resp.text)
                    await asyncio.sleep(0.05)
                    continue
                tally.bad.append(f"{op.method} {op.path} (attempt {attempt}): {resp.status_code} {resp.text[:200]}")
                return
            else:
                tally.bad.append(f"{op.method} {op.path}: never acknowledged")
                return


async def outage(pg: StoppablePg, tally: Tally, windows: list[tuple[float, float]]) -> None:
    while tally.acked < OUTAGE_AFTER_OPS:
        await asyncio.sleep(0.01)
    loop = asyncio.get_running_loop()
    began = time.monotonic()
    await loop.run_in_executor(None, pg.stop)
    await asyncio.sleep(OUTAGE_S)
    await loop.run_in_executor(None, pg.start)
    windows.append((began, time.monotonic()))


async def rows(dsn: str, prefix: str) -> dict[str, dict[str, Any]]:
    conn = await asyncpg.connect(dsn)
    try:
        found = await conn.fetch(
            "SELECT session_id, session_data::text AS data, metadata::text AS metadata "
            "FROM ai.agno_sessions WHERE session_id LIKE $1",
            prefix + "%",
        )
    finally:
        await conn.close()
    out = {}
    for r in found:
        data = json.loads(r["data"]) if r["data"] else {}
        metadata = json.loads(r["metadata"]) if r["metadata"] else None
        out[r["session_id"]] = {
            "name": data.get("session_name"),
            "state": (data.get("session_state") or {}).get("v"),
            "metadata": (metadata or {}).get("v"),
        }
    return out


@pytest.fixture()
def service(own_pg: StoppablePg) -> Iterator[ServiceProcess]:
    own_pg.start()
    proc = ServiceProcess(
        {
            "AGNO_PG_DSN": own_pg.dsn,
            "AGNO_DEFAULT_DB_ID": "main-db",
            "AGNO_REQUEST_TIMEOUT_S": str(REQUEST_TIMEOUT_S),
            "AGNO_POOL_MAX_SIZE": "10",
            "AGNO_LOG_LEVEL": "WARNING",
        }
    )
    try:
        yield proc
    finally:
        proc.stop()


async def test_writes_survive_a_database_restart_mid_run(service: ServiceProcess, own_pg: StoppablePg) -> None:
    prefix = f"fault-{uuid.uuid4().hex[:8]}-"
    plan = [chain(f"{prefix}{i:03d}", deleted=i % 4 == 3) for i in range(SESSIONS)]
    tally, windows = Tally(), []
    gate = asyncio.Semaphore(CONCURRENCY)
    pid = service.proc.pid
    limits = httpx.Limits(max_connections=CONCURRENCY * 2)
    async with httpx.AsyncClient(base_url=service.url, timeout=REQUEST_TIMEOUT_S * 4, limits=limits) as client:
        stopper = asyncio.create_task(outage(own_pg, tally, windows))
        await asyncio.gather(*(run_chain(client, ops, tally, gate) for ops, _ in plan))
        await asyncio.wait_for(stopper, 60)  # the outage happened during the run, and ended

    assert tally.bad == []
    assert tally.acked == SESSIONS * OPS_PER_SESSION
    # The outage was seen, and only as 503 JSON in agno's shape: never a 500.
    assert tally.statuses[503] > 0, tally.statuses
    assert {s for s in tally.statuses if s >= 500} == {503}, tally.statuses
    for text in tally.unavailable_bodies:
        body = json.loads(text)
        assert set(body) == {"detail"} and body["detail"].startswith("Database unavailable ("), text
    assert tally.slowest_s < REQUEST_TIMEOUT_S + 1, tally.slowest_s
    # The same process recovered by itself.
    assert service.proc.poll() is None and service.proc.pid == pid

    stored = await rows(own_pg.dsn, prefix)
    expected = {ops[0].body["session_id"]: want for ops, want in plan if want is not None}  # type: ignore[index]
    lost = {sid for sid in expected if sid not in stored}
    resurrected = set(stored) - set(expected)
    assert lost == set() and resurrected == set(), (sorted(lost)[:5], sorted(resurrected)[:5])
    assert {sid: stored[sid] for sid in expected} == expected
    for sid, row in stored.items():  # nothing half-applied: a PATCH's version everywhere or nowhere
        if row["metadata"] is not None:
            assert row["state"] == row["metadata"], (sid, row)
    print(
        f"\nfaults: {tally.acked} acknowledged writes in {tally.attempts} attempts, statuses "
        f"{dict(sorted(tally.statuses.items()))}, slowest {tally.slowest_s:.2f} s, outage "
        f"{windows[0][1] - windows[0][0]:.1f} s, rows lost 0"
    )
