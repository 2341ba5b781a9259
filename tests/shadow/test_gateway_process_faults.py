"""The gateway as its own process (`agentos-session gateway`), both sides behind fault proxies
(native as its own process, legacy the real agno AgentOS), at stage `primary`:

- memory stays flat while the shadow side (legacy) answers huge bodies, garbage, resets and
  stalls under concurrent load: the gateway process's RSS, read from /proc over the run,
  stays within a stated bound of its RSS after a warm-up;
- SIGTERM drains: a client request in flight when SIGTERM arrives gets its answer, and the
  process exits within `shadow.timeout_s` + a margin although the shadow still holds copies.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

from harness.processes import Process, free_port, stop
from harness.services import reset_gateway_tables, start_gateway
from tests.shadow.faults import FaultyLegacy
from tests.shadow.test_gateway import DETAIL, direct

SHADOW_TIMEOUT_S = 3.0
EXIT_MARGIN_S = 6.0  # start-up of the shutdown, the in-flight answer, closing pools
RSS_GROWTH_BOUND_MB = 64.0  # over the warm-up RSS: 32 copies in flight of at most 1 MB each, and slack
TARGETS = (DETAIL, "/sessions?type=agent", "/sessions/s-agent-1/runs")


def rss_mb(pid: int) -> float:
    """The process's resident set size (VmRSS in /proc/<pid>/status), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


@asynccontextmanager
async def gateway_process(
    tmp_path: Path, pg_dsn: str, legacy_url: str, native_url: str
) -> AsyncIterator[tuple[Process, FaultyLegacy, FaultyLegacy]]:
    """The gateway process at stage `primary`, native and legacy each behind a fault proxy."""
    await reset_gateway_tables(pg_dsn)
    async with FaultyLegacy(native_url) as native, FaultyLegacy(legacy_url) as legacy:
        config = tmp_path / "gateway.yaml"
        # The shipped defaults (queue 1000, 32 copies in flight, a 1 MB copy limit: a huge
        # answer is not read), a short shadow timeout, no gate (the stage stays put).
        config.write_text(f"shadow:\n  timeout_s: {SHADOW_TIMEOUT_S}\ngate:\n  enabled: false\n")
        port = free_port()
        env = {
            "AGNO_GATEWAY_PORT": str(port),
            "AGNO_GATEWAY_HOST": "127.0.0.1",
            "AGNO_LEGACY_URL": legacy.url,
            "AGNO_NATIVE_URL": native.url,
            "AGNO_GATEWAY_STAGE": "primary",
            "AGNO_GATEWAY_STORE_DSN": pg_dsn,
            "AGNO_LOG_LEVEL": "INFO",
        }
        argv = [sys.executable, "-m", "agentos_session.cli", "gateway", "--config", str(config)]
        process = await asyncio.to_thread(start_gateway, port, env, tmp_path / "gateway.log", argv)
        try:
            yield process, native, legacy
        finally:
            legacy.release.set()
            native.release.set()
            await asyncio.to_thread(stop, process)


async def test_memory_stays_flat_while_the_shadow_fails(
    tmp_path: Path, pg_dsn: str, seeded: None, legacy_url: str, native_url: str
) -> None:
    expected = {t: await direct(native_url, t) for t in TARGETS}
    async with gateway_process(tmp_path, pg_dsn, legacy_url, native_url) as (process, _, legacy):
        pid = process.popen.pid
        legacy.huge_bytes = 4 * 1024 * 1024
        samples: list[float] = []
        errors: list[str] = []

        async def load(http: aiohttp.ClientSession, count: int) -> None:
            for i in range(count):
                target = TARGETS[i % len(TARGETS)]
                async with http.get(process.url + target) as r:
                    if (r.status, await r.read()) != expected[target]:
                        errors.append(f"{target}: {r.status}")

        async def sample_rss(done: asyncio.Event) -> None:
            while not done.is_set():
                samples.append(rss_mb(pid))
                await asyncio.sleep(0.1)

        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            await asyncio.gather(*(load(http, 15) for _ in range(8)))  # warm-up: both sides answer
            await asyncio.sleep(1.0)
            baseline = rss_mb(pid)
            done = asyncio.Event()
            sampler = asyncio.create_task(sample_rss(done))
            sent = 0
            for mode in ("huge", "garbage", "reset", "hold", "huge", "garbage", "reset", "huge"):
                legacy.mode = mode
                await asyncio.gather(*(load(http, 15) for _ in range(8)))
                sent += 8 * 15
                if mode == "hold":
                    legacy.release.set()  # the held copies answer now (or timed out already)
                    await asyncio.sleep(0.2)
                    legacy.release.clear()
            legacy.mode = "pass"
            await asyncio.sleep(SHADOW_TIMEOUT_S + 1)  # every copy answered, timed out or dropped
            done.set()
            await sampler
            async with http.get(process.url + "/metrics") as r:
                metrics = await r.text()
        assert not errors, errors[:5]
        peak = max(samples)
        print(f"RSS: baseline {baseline:.1f} MB, peak {peak:.1f} MB, end {samples[-1]:.1f} MB, {sent} requests")
        assert peak - baseline < RSS_GROWTH_BOUND_MB, f"RSS grew {peak - baseline:.1f} MB over {baseline:.1f} MB"
        ends = sum(
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith(("shadow_mirror_skipped_total{", "shadow_comparisons_total{"))
        )
        assert ends == sent + 8 * 15, f"{ends} copies accounted for, {sent + 8 * 15} requests"


async def test_sigterm_answers_the_request_in_flight_and_exits_within_the_deadline(
    tmp_path: Path, pg_dsn: str, seeded: None, legacy_url: str, native_url: str
) -> None:
    expected = await direct(native_url, DETAIL)
    async with gateway_process(tmp_path, pg_dsn, legacy_url, native_url) as (process, native, legacy):
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            legacy.mode = "hold"  # every mirrored copy is held by the shadow side, never released
            for _ in range(3):
                async with http.get(process.url + DETAIL) as r:
                    assert (r.status, await r.read()) == expected
            for _ in range(100):
                if legacy.pending == 3:
                    break
                await asyncio.sleep(0.05)
            assert legacy.pending == 3
            native.mode = "hold"  # the next client request is held by the primary side

            async def in_flight() -> tuple[int, bytes]:
                async with http.get(process.url + DETAIL) as r:
                    return r.status, await r.read()

            request = asyncio.create_task(in_flight())
            for _ in range(100):
                if native.pending == 1:
                    break
                await asyncio.sleep(0.05)
            assert native.pending == 1
            os.kill(process.popen.pid, signal.SIGTERM)
            sent_at = time.monotonic()
            await asyncio.sleep(1.0)
            assert process.popen.poll() is None, "the gateway exited with a request in flight"
            # The in-flight request's own copy is answered (and must be compared in the drain);
            # the three held ones stay held and time out within it.
            legacy.mode = "pass"
            native.mode = "pass"
            native.release.set()
            assert await asyncio.wait_for(request, 10) == expected
            deadline = SHADOW_TIMEOUT_S + EXIT_MARGIN_S
            while process.popen.poll() is None and time.monotonic() - sent_at < deadline + 5:
                await asyncio.sleep(0.05)
            took = time.monotonic() - sent_at
            assert process.popen.poll() is not None, "the gateway did not exit"
            assert took < deadline, f"exited {took:.1f}s after SIGTERM (deadline {deadline}s)"
            assert process.popen.returncode == 0, process.output(tail=20)
            # The copies held at SIGTERM ended within the drain (timed out and counted), none cut off.
            assert "left unfinished" not in process.output(), process.output(tail=20)
