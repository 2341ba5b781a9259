"""Native's database stopped under load, through the gateway at stage `primary`.

The gateway runs as its own process (`agentos-session gateway`) with the native service
in-process on a Postgres of its own (tests/reliability/conftest.py `StoppablePg`), and the real
agno AgentOS as legacy on ITS OWN Postgres (the session's seeded server). Concurrent mixed reads
and writes go through the gateway; after 150 acknowledged writes native's Postgres is stopped
with its `pg_ctl` and started again 3 s later. What must hold:

* reads: no 5xx reaches a client; while native's database is away they are answered by legacy
  (`shadow_fallbacks_total{reason="cannot_serve"}` on the read routes grows);
* writes follow the gateway's write policy (shadow_proxy/proxying.py, docs/rollout.md): a write
  that reached native is never retried on legacy, so during the outage it is answered with
  native's `503 Database unavailable` (and Retry-After) and the client retries it; no write is
  applied twice (no fallback counted on a write route, no row of the run in legacy's
  database), and every acknowledged write is in native's database afterwards;
* no request takes longer than the request timeout;
* the gateway recovers without a restart: the same process serves reads from native again.
"""

from __future__ import annotations

import asyncio
import collections
import json
import re
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from harness.processes import Process, free_port, stop
from harness.services import reset_gateway_tables, start_gateway
from session_service.errors import RETRY_AFTER_S
from tests.reliability.conftest import StoppablePg
from tests.reliability.test_database_faults import rows

SESSIONS = 60
WRITES_PER_SESSION = 5  # create, then PATCH / rename: 300 acknowledged writes
READS_PER_WRITE = 2  # a read of the session and of a list page after each write
CONCURRENCY = 12
READERS = 4  # readers besides the write chains
REQUEST_TIMEOUT_S = 5.0  # native's and the gateway's per side
OUTAGE_AFTER_WRITES = 150
OUTAGE_S = 3.0
MAX_ATTEMPTS = 200  # per write, 50 ms apart after a 503
WRITE_ROUTES = ("POST /sessions", "PATCH /sessions/{session_id}", "POST /sessions/{session_id}/rename")


@dataclass
class Tally:
    acked: int = 0
    reads: int = 0
    statuses: collections.Counter[tuple[str, int]] = field(default_factory=collections.Counter)
    slowest_s: float = 0.0
    bad: list[str] = field(default_factory=list)
    outage_reads: int = 0


@pytest.fixture()
def native_pg() -> Iterator[StoppablePg]:
    pg = StoppablePg()
    try:
        yield pg
    finally:
        try:
            pg.start()  # cleanup wants it running to stop it
        finally:
            pg.close()


@pytest.fixture()
async def gateway(tmp_path: Path, native_pg: StoppablePg, pg_dsn: str, legacy_url: str) -> AsyncIterator[Process]:
    await reset_gateway_tables(pg_dsn)
    config = tmp_path / "gateway.yaml"
    # No gate: the stage stays `primary` whatever native's error rate (the gate's own tests
    # cover roll-back); timeouts test-sized.
    config.write_text(
        f"gate:\n  enabled: false\nnative:\n  timeout_s: {REQUEST_TIMEOUT_S}\nlegacy:\n  timeout_s: {REQUEST_TIMEOUT_S}\n"
    )
    port = free_port()
    env = {
        "AGNO_GATEWAY_PORT": str(port),
        "AGNO_GATEWAY_HOST": "127.0.0.1",
        "AGNO_LEGACY_URL": legacy_url,
        "AGNO_GATEWAY_STAGE": "primary",
        "AGNO_GATEWAY_STORE_DSN": pg_dsn,  # the gateway's own tables beside legacy's data
        "AGNO_PG_DSN": native_pg.dsn,  # the in-process native service's database
        "AGNO_DEFAULT_DB_ID": "main-db",
        "AGNO_REQUEST_TIMEOUT_S": str(int(REQUEST_TIMEOUT_S)),
        "AGNO_LOG_LEVEL": "WARNING",
    }
    argv = [sys.executable, "-m", "agentos_session.cli", "gateway", "--config", str(config)]
    process = await asyncio.to_thread(start_gateway, port, env, tmp_path / "gateway.log", argv)
    try:
        yield process
    finally:
        await asyncio.to_thread(stop, process)


def writes(sid: str) -> list[tuple[str, str, dict[str, Any], frozenset[int], frozenset[int]]]:
    """A session's writes: (method, path, body, acknowledging statuses, also on a retry)."""
    ops = [("POST", "/sessions?type=agent", {"session_id": sid, "agent_id": "gw-fault", "session_name": "v0"})]
    for v in range(1, WRITES_PER_SESSION):
        if v % 2:
            ops.append(("PATCH", f"/sessions/{sid}", {"session_name": f"v{v}", "session_state": {"v": v}}))
        else:
            ops.append(("POST", f"/sessions/{sid}/rename", {"session_name": f"v{v}"}))
    return [
        (m, p, b, frozenset({201}) if i == 0 else frozenset({200}), frozenset({409}) if i == 0 else frozenset())
        for i, (m, p, b) in enumerate(ops)
    ]


async def timed(client: httpx.AsyncClient, tally: Tally, method: str, path: str, body: Any = None) -> httpx.Response:
    started = time.monotonic()
    resp = await client.request(method, path, json=body)
    tally.slowest_s = max(tally.slowest_s, time.monotonic() - started)
    tally.statuses[(method, resp.status_code)] += 1
    return resp


async def session_chain(
    client: httpx.AsyncClient, sid: str, tally: Tally, gate: asyncio.Semaphore, outage: asyncio.Event
) -> None:
    for method, path, body, ok, ok_on_retry in writes(sid):
        async with gate:
            for attempt in range(MAX_ATTEMPTS):
                resp = await timed(client, tally, method, path, body)
                if resp.status_code in ok or (attempt and resp.status_code in ok_on_retry):
                    tally.acked += 1
                    break
                if resp.status_code == 503 and resp.json()["detail"].startswith("Database unavailable ("):
                    if resp.headers.get("Retry-After") != str(RETRY_AFTER_S):
                        tally.bad.append(f"{method} {path}: 503 without Retry-After")
                    await asyncio.sleep(0.05)
                    continue
                tally.bad.append(f"{method} {path} (attempt {attempt}): {resp.status_code} {resp.text[:200]}")
                return
            else:
                tally.bad.append(f"{method} {path}: never acknowledged")
                return
            for path in (f"/sessions/{sid}?type=agent", "/sessions?type=agent&limit=5")[:READS_PER_WRITE]:
                resp = await timed(client, tally, "GET", path)
                tally.reads += 1
                tally.outage_reads += outage.is_set()
                if resp.status_code >= 500:
                    tally.bad.append(f"GET {path}: {resp.status_code} {resp.text[:200]}")


async def reader(
    client: httpx.AsyncClient, sids: list[str], tally: Tally, outage: asyncio.Event, done: asyncio.Event
) -> None:
    """Reads besides the chains' own, for the whole run (so many fall inside the outage)."""
    paths = (
        "/sessions?type=agent&limit=5",
        *(f"/sessions/{sid}?type=agent" for sid in sids[:5]),
        "/sessions/s-agent-1",
    )
    for i in range(5_000):  # bounded; the run ends it first
        if done.is_set():
            return
        path = paths[i % len(paths)]
        resp = await timed(client, tally, "GET", path)
        tally.reads += 1
        tally.outage_reads += outage.is_set()
        if resp.status_code >= 500:
            tally.bad.append(f"GET {path}: {resp.status_code} {resp.text[:200]}")
        await asyncio.sleep(0.02)


async def stop_and_start(pg: StoppablePg, tally: Tally, outage: asyncio.Event, window: list[float]) -> None:
    deadline = time.monotonic() + 120
    while tally.acked < OUTAGE_AFTER_WRITES and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    window.append(time.monotonic())
    await asyncio.to_thread(pg.stop)
    outage.set()
    await asyncio.sleep(OUTAGE_S)
    await asyncio.to_thread(pg.start)
    outage.clear()
    window.append(time.monotonic())


def fallbacks(metrics_text: str) -> dict[tuple[str, str], float]:
    """shadow_fallbacks_total by (route, reason), from the Prometheus text."""
    found: dict[tuple[str, str], float] = {}
    for line in metrics_text.splitlines():
        m = re.match(r'shadow_fallbacks_total\{(?=.*route="([^"]*)")(?=.*reason="([^"]*)").*\} (\S+)$', line)
        if m:
            found[(m.group(1), m.group(2))] = float(m.group(3))
    return found


async def test_native_database_stopped_under_load_through_the_gateway_at_primary(
    gateway: Process, native_pg: StoppablePg, pg_dsn: str
) -> None:
    prefix = f"gwdb-{uuid.uuid4().hex[:8]}-"
    sids = [f"{prefix}{i:03d}" for i in range(SESSIONS)]
    tally, outage, window = Tally(), asyncio.Event(), []
    gate = asyncio.Semaphore(CONCURRENCY)
    pid = gateway.pid
    limits = httpx.Limits(max_connections=CONCURRENCY * 2)
    async with httpx.AsyncClient(base_url=gateway.url, timeout=REQUEST_TIMEOUT_S * 4, limits=limits) as client:
        stopper = asyncio.create_task(stop_and_start(native_pg, tally, outage, window))
        done = asyncio.Event()
        readers = [asyncio.create_task(reader(client, sids, tally, outage, done)) for _ in range(READERS)]
        await asyncio.gather(*(session_chain(client, sid, tally, gate, outage) for sid in sids))
        done.set()
        await asyncio.wait_for(asyncio.gather(*readers), 30)
        await asyncio.wait_for(stopper, 60)
        # Recovered without a restart: native serves the reads again (legacy has no such session).
        after = await client.get(f"/sessions/{sids[0]}?type=agent")
        metrics = (await client.get("/metrics")).text

    assert tally.bad == [], tally.bad[:10]
    assert tally.acked == SESSIONS * WRITES_PER_SESSION
    assert len(window) == 2, "the outage did not happen during the run"
    # Writes saw the outage as native's 503 (not retried on legacy: the policy), reads never a 5xx.
    assert tally.statuses[("GET", 503)] == 0 and not any(m == "GET" and s >= 500 for m, s in tally.statuses)
    assert sum(n for (m, s), n in tally.statuses.items() if m != "GET" and s == 503) > 0, tally.statuses
    assert tally.slowest_s < REQUEST_TIMEOUT_S + 1, tally.slowest_s
    assert gateway.running and gateway.pid == pid
    assert after.status_code == 200 and after.json()["session_name"] == f"v{WRITES_PER_SESSION - 1}", after.text

    counted = fallbacks(metrics)
    read_fallbacks = sum(n for (route, _), n in counted.items() if route.startswith("GET "))
    write_fallbacks = {k: n for k, n in counted.items() if k[0] in WRITE_ROUTES and n}
    assert read_fallbacks > 0, counted  # legacy answered reads while native's database was away
    assert write_fallbacks == {}, write_fallbacks  # a write that reached native is never sent twice

    stored = await rows(native_pg.dsn, prefix)  # every acknowledged write is there
    want = {
        sid: {"name": f"v{WRITES_PER_SESSION - 1}", "state": WRITES_PER_SESSION - 2, "metadata": None} for sid in sids
    }
    assert stored == want, sorted(set(stored) ^ set(want))[:5]
    conn = await asyncpg.connect(pg_dsn)
    try:
        in_legacy = await conn.fetchval("SELECT count(*) FROM ai.agno_sessions WHERE session_id LIKE $1", prefix + "%")
    finally:
        await conn.close()
    assert in_legacy == 0  # no write of the run went to legacy
    statuses = {f"{m} {s}": n for (m, s), n in sorted(tally.statuses.items())}
    print(
        f"\n[gateway db faults] {tally.acked} acknowledged writes, {tally.reads} reads "
        f"({tally.outage_reads} during a {window[1] - window[0]:.1f} s outage), statuses {json.dumps(statuses)}, "
        f"read fallbacks {read_fallbacks:.0f}, write fallbacks 0, slowest {tally.slowest_s:.2f} s "
        f"(timeout {REQUEST_TIMEOUT_S:.0f} s), rows lost 0, gateway not restarted"
    )
