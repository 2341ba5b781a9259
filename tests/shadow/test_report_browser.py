"""The report as a person gets it: the admin app served on a real port, a mismatch seeded in
the real store (or found by the real gateway), and headless Chromium loading `/shadow/report`
and dumping the DOM it built.
Proves the page is valid enough for a browser to parse whole, and that the seeded sample and
its differing path are findable in it.

Chromium is required, not optional: `make test` installs it where it is missing, so a missing
browser is a broken setup and fails the test rather than skipping it.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from shadow_proxy.config import Gate
from shadow_proxy.store import GatewayStore
from tests.legacy.fixtures import free_port
from tests.shadow.conftest import GatewayFactory, gateway_config
from tests.shadow.faults import FaultyLegacy
from tests.shadow.test_admin import FakeGateway, make_app, make_sample, open_store
from tests.shadow.test_gateway import at_stage, gw, settled

CHROMIUM_NAMES = ("chromium", "chromium-browser")
TIMEOUT_S = 60.0


def chromium() -> str:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        f"headless Chromium not found (looked for {', '.join(CHROMIUM_NAMES)} on PATH); "
        "`make test` installs it (Debian package `chromium`)",
        pytrace=False,
    )


@pytest.fixture
async def store(pg_dsn: str) -> AsyncIterator[GatewayStore]:
    async with open_store(pg_dsn) as opened:
        yield opened


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    """The app on 127.0.0.1 (a free port, retried if another process took it meanwhile)."""
    runner = web.AppRunner(app)
    await runner.setup()
    for _attempt in range(3):
        port = free_port()
        try:
            await web.TCPSite(runner, "127.0.0.1", port).start()
            return runner, f"http://127.0.0.1:{port}"
        except OSError:
            continue
    await runner.cleanup()
    raise RuntimeError("no free port for the admin app")


async def dump_dom(browser: str, url: str, profile: Path) -> str:
    """What Chromium rendered at `url`; the browser is killed if it outlives the timeout."""
    proc = await asyncio.create_subprocess_exec(
        browser,
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--dump-dom",
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        pytest.fail(f"Chromium did not finish within {TIMEOUT_S:.0f} s loading {url}")
    assert proc.returncode == 0, f"Chromium exited with {proc.returncode}:\n{err.decode(errors='replace')[-2000:]}"
    return out.decode()


async def test_browser_finds_the_seeded_mismatch(store: GatewayStore, tmp_path: Path):
    browser = chromium()
    await store.record(
        make_sample(
            "/sessions/s1", {"session_name": "legacy name"}, {"session_name": "native name"}, request_id="browser-1"
        )
    )
    [stored] = await store.mismatches()
    runner, base = await serve(make_app(FakeGateway(store)))
    try:
        dom = await dump_dom(browser, f"{base}/shadow/report", tmp_path / "profile")
    finally:
        await runner.cleanup()
    assert f'id="sample-{stored["id"]}"' in dom
    assert 'data-path="session_name"' in dom
    assert "browser-1" in dom and "native name" in dom


async def test_browser_finds_a_mismatch_the_real_gateway_found(
    make_gateway: GatewayFactory, legacy_url: str, tmp_path: Path
) -> None:
    """End to end: the real AgentOS behind a fault injector that changes `session_name`, the
    gateway at stage primary mirroring to it, and Chromium reading the gateway's own report."""
    browser = chromium()
    async with FaultyLegacy(legacy_url) as legacy:
        legacy.mode = "mutate"
        client = await make_gateway(at_stage(gateway_config(legacy.url), "primary"))
        assert (await client.get("/sessions/s-team-1?type=team")).status == 200
        await settled(client)
        [stored] = await gw(client).store.mismatches()  # type: ignore[union-attr]
        dom = await dump_dom(browser, str(client.make_url("/shadow/report")), tmp_path / "profile")
    assert f'id="sample-{stored["id"]}"' in dom
    assert 'data-path="session_name"' in dom
    assert "(changed) " in dom  # the legacy side's altered value, shown beside native's


async def test_browser_shows_progress_and_known_differences(
    make_gateway: GatewayFactory, legacy_url: str, tmp_path: Path
) -> None:
    """The real gateway at stage shadow with its gate on: after clean reads and `page=0` lists
    (an `expected` answer by the shipped known difference `list-page-zero`), Chromium reads in
    its report how far the group is from promotion, on the stored evidence, and which known
    difference made the expected answers."""
    browser = chromium()
    gate = Gate(min_samples=1000, interval_s=60.0)  # judged by hand below, never promoted here
    client = await make_gateway(at_stage(gateway_config(legacy_url, gate=gate), "shadow"))
    for _ in range(4):
        assert (await client.get("/sessions/s-agent-1")).status == 200
    for _ in range(2):  # legacy answers (agno fails on page 0); native's different answer is expected
        await client.get("/sessions?page=0")
    await settled(client)
    assert await gw(client).gate_step() == []  # flushes this replica's counts and judges the stored sum
    dom = await dump_dom(browser, str(client.make_url("/shadow/report")), tmp_path / "profile")
    row = dom[dom.index('data-group="reads"') :]
    row = row[: row.index("</tr>")]
    assert "all replicas" in row
    assert '<span class="pairs">6</span> / min 1000' in row
    assert "at least 994 more clean pairs" in row
    known = dom[dom.index('id="known"') :]
    assert "list-page-zero" in known[: known.index("</section>")]
