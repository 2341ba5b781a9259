"""`make demo`: the whole rollout on one machine, with real parts.

It starts an embedded Postgres, fills it by running real agno agents, a team and a workflow
against a local fake OpenAI endpoint (no key, no network), starts the real agno AgentOS on it
as legacy, starts the gateway (native in-process) in front of both at stage `shadow`, sends a
mix of reads and writes through the gateway, and prints where to look. It then keeps running
(Ctrl-C stops everything); `--once` stops after the traffic.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from harness.fake_openai import start_fake_openai  # noqa: E402
from harness.postgres import PgServer  # noqa: E402
from harness.processes import Process, stop  # noqa: E402
from harness.seed import SESSION_ORDER, seed  # noqa: E402
from harness.services import start_gateway, start_legacy  # noqa: E402


def start_demo_gateway(pg_dsn: str, legacy_url: str, port: int, log_path: Path) -> Process:
    env = {
        "AGNO_PG_DSN": pg_dsn,
        "AGNO_DEFAULT_DB_ID": "main-db",
        "AGNO_LEGACY_URL": legacy_url,
        "AGNO_GATEWAY_PORT": str(port),
        "AGNO_GATEWAY_ADMIN_TOKEN": "demo-admin-token",
        "PYTHONUNBUFFERED": "1",
    }
    try:
        return start_gateway(port, env, log_path)
    except RuntimeError as exc:
        raise SystemExit(str(exc)) from None


def traffic(base: str, rounds: int) -> dict[str, int]:
    """Reads over every seeded session, with filters, plus a few writes (each verified by the
    gateway on both sides), plus `page=0`, a known difference."""
    rng = random.Random(7)
    statuses: dict[str, int] = {}
    with httpx.Client(base_url=base, timeout=30) as client:
        for _ in range(rounds):
            session_id = rng.choice(SESSION_ORDER)
            for path in (
                "/sessions",
                f"/sessions/{session_id}",
                f"/sessions/{session_id}/runs",
                f"/sessions?limit=2&page={rng.randint(1, 3)}",
                "/sessions?page=0",
            ):
                r = client.get(path)
                statuses[str(r.status_code)] = statuses.get(str(r.status_code), 0) + 1
        for i in range(3):
            new_id = f"demo-{uuid.uuid4().hex[:8]}"
            for method, path, body in (
                ("POST", "/sessions", {"session_id": new_id, "session_name": f"Demo {i}"}),
                ("POST", f"/sessions/{new_id}/rename", {"session_name": f"Demo {i}, renamed"}),
                ("PATCH", f"/sessions/{new_id}", {"metadata": {"demo": True}}),
                ("DELETE", f"/sessions/{new_id}", None),
            ):
                r = client.request(method, path, json=body)
                statuses[str(r.status_code)] = statuses.get(str(r.status_code), 0) + 1
    return statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--port", type=int, default=int(os.environ.get("AGNO_GATEWAY_PORT", "8090")))
    parser.add_argument("--once", action="store_true", help="stop after the traffic")
    args = parser.parse_args()
    logs = Path(tempfile.mkdtemp(prefix="agentos-demo-"))
    pg = PgServer()
    openai_url, stop_openai = start_fake_openai()
    legacy = gateway_process = None
    try:
        print("seeding the database with real agno agent, team and workflow runs ...", flush=True)
        seed(pg.main_dsn, openai_url)
        legacy = start_legacy(pg.main_dsn, openai_url, name="demo-legacy")
        gateway_process = start_demo_gateway(pg.main_dsn, legacy.url, args.port, logs / "gateway.log")
        base = gateway_process.url
        print(f"legacy (agno AgentOS): {legacy.url}\ngateway (native in-process): {base}", flush=True)
        statuses = traffic(base, args.rounds)
        time.sleep(1.0)  # let the last mirrored copies be compared
        health = httpx.get(base + "/healthz").json()
        print(f"sent through the gateway, answers by status: {statuses}; stages: {health['stages']}")
        print(
            f"""
Where to look:
  {base}/shadow/report          parity per route, top differing paths, recent samples (HTML)
  {base}/metrics                shadow_* metrics (and the native service's agno_session_*)
  {base}/shadow/mismatches      stored samples, JSON (filters: route, path, since, until)
  {base}/shadow/stage           stages and their history
  curl -X POST {base}/shadow/stage -H 'Authorization: Bearer demo-admin-token' \\
       -d '{{"group": "reads", "stage": "primary", "reason": "demo"}}'
  gateway log: {logs / "gateway.log"}
""",
            flush=True,
        )
        if not args.once:
            print("running; Ctrl-C stops everything", flush=True)
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
    finally:
        stop(gateway_process)
        stop(legacy)
        stop_openai()
        pg.stop()


if __name__ == "__main__":
    main()
