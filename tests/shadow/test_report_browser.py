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
import base64
import json
import os
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from shadow_proxy.config import Admin, Gate
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


# ---- a page driven through the Chrome DevTools Protocol ------------------------------------------


class Browser:
    """Headless Chromium driven over its DevTools protocol (a websocket, aiohttp's client): one
    page, every request it makes recorded (`requests`), scripts evaluated in it, screenshots.
    What `--dump-dom` cannot do: click, wait for the page's own script, watch the network."""

    def __init__(self, profile: Path) -> None:
        self.profile = profile
        self.proc: asyncio.subprocess.Process | None = None
        self.session: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.page = ""  # the CDP session id of the page's target
        self.requests: list[str] = []
        self.loaded = asyncio.Event()
        self._next = 0
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Browser:
        self.profile.mkdir(parents=True, exist_ok=True)
        self.proc = await asyncio.create_subprocess_exec(
            chromium(),
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--remote-debugging-port=0",
            "--remote-debugging-address=127.0.0.1",
            f"--user-data-dir={self.profile}",
            "about:blank",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        active = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + TIMEOUT_S
        while not (active.exists() and len(active.read_text().split()) >= 2):
            if time.monotonic() > deadline or self.proc.returncode is not None:
                await self.__aexit__()
                pytest.fail("Chromium did not open its DevTools port")
            await asyncio.sleep(0.1)
        port, path = active.read_text().split()[:2]
        self.session = aiohttp.ClientSession()
        self.ws = await self.session.ws_connect(f"ws://127.0.0.1:{port}{path}", max_msg_size=64 * 1024 * 1024)
        self._reader = asyncio.create_task(self._read())
        target = await self.send("Target.createTarget", {"url": "about:blank"}, page=False)
        attached = await self.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}, page=False
        )
        self.page = attached["sessionId"]
        await self.send("Network.enable")
        await self.send("Page.enable")
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self._reader is not None:
            self._reader.cancel()
        if self.ws is not None:
            await self.ws.close()
        if self.session is not None:
            await self.session.close()
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()

    async def _read(self) -> None:
        assert self.ws is not None
        async for message in self.ws:
            data = json.loads(message.data)
            if "id" in data and data["id"] in self._waiting:
                self._waiting.pop(data["id"]).set_result(data)
            elif data.get("method") == "Network.requestWillBeSent":
                self.requests.append(data["params"]["request"]["url"])
            elif data.get("method") == "Page.loadEventFired":
                self.loaded.set()

    async def send(self, method: str, params: dict[str, Any] | None = None, *, page: bool = True) -> dict[str, Any]:
        assert self.ws is not None
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if page:
            message["sessionId"] = self.page
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[self._next] = future
        await self.ws.send_str(json.dumps(message))
        answer = await asyncio.wait_for(future, TIMEOUT_S)
        assert "error" not in answer, f"{method}: {answer['error']}"
        return dict(answer.get("result") or {})

    async def open(self, url: str) -> None:
        self.loaded.clear()
        await self.send("Page.navigate", {"url": url})
        await asyncio.wait_for(self.loaded.wait(), TIMEOUT_S)

    async def js(self, expression: str) -> Any:
        """The value of `expression` in the page (awaited if it is a promise)."""
        result = await self.send(
            "Runtime.evaluate", {"expression": expression, "awaitPromise": True, "returnByValue": True}
        )
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    async def until(self, expression: str, timeout_s: float = 20.0) -> Any:
        """Poll `expression` in the page until it is truthy; its value."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            value = await self.js(expression)
            if value:
                return value
            await asyncio.sleep(0.2)
        pytest.fail(f"never true in the page within {timeout_s:.0f} s: {expression}")

    async def screenshot(self, path: Path) -> None:
        shot = await self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        path.write_bytes(base64.b64decode(shot["data"]))


def artifacts(tmp_path: Path) -> Path:
    """Where the screenshots go: $ARTIFACTS/<test> when set, else the test's tmp_path; printed."""
    root = Path(os.environ["ARTIFACTS"]) if os.environ.get("ARTIFACTS") else tmp_path
    out = root / "report-browser"
    out.mkdir(parents=True, exist_ok=True)
    print(f"screenshots in {out}")
    return out


TOKEN = "report-admin-token"


async def test_browser_drives_the_live_report(make_gateway: GatewayFactory, legacy_url: str, tmp_path: Path) -> None:
    """End to end in a real browser: the real AgentOS behind a fault injector that changes
    `session_name`, the in-process native service, the real gateway at stage shadow (mirroring
    to native), its store on the real Postgres. Chromium opens the report and it is checked
    that: no request leaves the gateway (no CDN, no external asset); the parity chart is an SVG
    with points; the differing path's lines are highlighted in both answers; each side's
    copy-as-curl is the stored request against that side's base URL with the secret redacted
    (an env var, never the value); the ask-again button sends the request to both sides now
    (still a mismatch while legacy mutates, a match once it stops); and the page refreshes a
    count after more traffic, without a reload."""
    shots = artifacts(tmp_path)
    async with FaultyLegacy(legacy_url) as legacy:
        legacy.mode = "mutate"
        config = at_stage(gateway_config(legacy.url, admin=Admin(token=TOKEN)), "shadow")
        client = await make_gateway(config)
        secret = "Bearer browser-secret-value"
        target = "/sessions/s-team-1?type=team"
        for _ in range(3):
            assert (await client.get(target, headers={"Authorization": secret})).status == 200
        await settled(client)
        await gw(client).rollout.flush()  # this replica's counts join the store's buckets
        [first, *_] = await gw(client).store.mismatches()  # type: ignore[union-attr]
        base = str(client.make_url("")).rstrip("/")
        async with Browser(tmp_path / "profile") as browser:
            await browser.open(f"{base}/shadow/report?refresh=1")
            await browser.screenshot(shots / "1-loaded.png")
            assert await browser.js("document.documentElement.dataset.js") == "on"

            # Nothing but the gateway itself was asked for anything.
            assert browser.requests and all(url.startswith(base + "/") for url in browser.requests), browser.requests

            # The parity chart: one SVG per route, with a point per bucket.
            points = await browser.js("document.querySelectorAll('#chart svg.parity-chart circle.point').length")
            assert points >= 1
            parity = await browser.js("document.querySelector('#chart circle.point').dataset.parity")
            assert parity == "0.0000"  # every comparison so far differs

            # The differing path, highlighted on both sides of the sample.
            article = f"document.getElementById('sample-{first['id']}')"
            marked = await browser.js(
                f"Array.from({article}.querySelectorAll('.sides .line.hl')).map(e => e.textContent.trim())"
            )
            assert marked and all(line.startswith('"session_name":') for line in marked), marked
            assert len({line for line in marked}) == 2  # legacy's changed value and native's

            # Copy as curl: each side's base URL, the stored target, the secret as an env var.
            curls = await browser.js(
                f"Object.fromEntries(Array.from({article}.querySelectorAll('pre.curl'))"
                ".map(e => [e.dataset.side, e.textContent]))"
            )
            assert curls["legacy"].startswith(f"curl -sS -X GET {legacy.url}'{target}'"), curls["legacy"]
            assert curls["native"].startswith(f"curl -sS -X GET \"$NATIVE_URL\"'{target}'"), curls["native"]
            for text in curls.values():
                assert '-H "Authorization: Bearer $OS_SECURITY_KEY"' in text and "browser-secret-value" not in text

            # Ask again: still different while legacy mutates...
            await browser.js(f"document.getElementById('admin-token').value = {json.dumps(TOKEN)}")
            button = f"{article}.querySelector('button.recheck')"
            result = f"{article}.querySelector('pre.recheck-result').dataset.result"
            await browser.js(f"{button}.click()")
            assert await browser.until(result) == "mismatch"
            shown = json.loads(await browser.js(f"{article}.querySelector('pre.recheck-result').textContent"))
            assert shown["primary"]["side"] == "legacy" and shown["shadow"]["side"] == "native"
            assert "session_name" in {d["template"] for d in shown["comparison"]["differences"]}
            assert shown["dropped_headers"] == ["Authorization"]
            await browser.screenshot(shots / "2-recheck-mismatch.png")
            # ... and the same as native once legacy answers as the AgentOS does.
            legacy.mode = "pass"
            await browser.js(f"{article}.querySelector('pre.recheck-result').dataset.result = ''")
            await browser.js(f"{button}.click()")
            assert await browser.until(result) == "match"
            await browser.screenshot(shots / "3-recheck-match.png")

            # Refresh without a reload: more traffic, and the page's count follows.
            route_cell = (
                "document.querySelector('#parity tr[data-route=\"GET /sessions/{session_id}\"] .result-count-match')"
            )
            before = int(await browser.js(f"{route_cell}.textContent"))
            marker = await browser.js("window.__same_page = 'yes'")
            assert marker == "yes"
            for _ in range(2):
                assert (await client.get(target)).status == 200
            await settled(client)
            await browser.until(f"Number({route_cell}.textContent) >= {before + 2}")
            assert await browser.js("window.__same_page") == "yes"  # refreshed in place, not reloaded
            await browser.screenshot(shots / "4-refreshed.png")
            assert all(url.startswith(base + "/") for url in browser.requests), browser.requests
    assert sorted(p.name for p in shots.glob("*.png")) == [
        "1-loaded.png",
        "2-recheck-mismatch.png",
        "3-recheck-match.png",
        "4-refreshed.png",
    ]


async def test_the_page_works_with_javascript_off(store: GatewayStore, tmp_path: Path) -> None:
    """Scripts disabled in the browser: every section is there from the server, and the cohort
    selector is a plain form that loads the page for the chosen cohort."""
    shots = artifacts(tmp_path)
    await store.record(make_sample("/sessions/s1", {"session_name": "a"}, {"session_name": "b"}, request_id="no-js"))
    runner, base = await serve(make_app(FakeGateway(store)))
    try:
        async with Browser(tmp_path / "profile") as browser:
            await browser.send("Emulation.setScriptExecutionDisabled", {"value": True})
            await browser.open(f"{base}/shadow/report")
            sections = await browser.js("Array.from(document.querySelectorAll('section')).map(s => s.id)")
            assert sections == [
                "stages",
                "progress",
                "chart",
                "latency",
                "parity",
                "cohorts",
                "known",
                "top-paths",
                "samples",
            ]
            assert await browser.js("document.documentElement.dataset.js === undefined")  # the script never ran
            assert "no-js" in await browser.js("document.getElementById('samples').textContent")
            # Choose a cohort as a person would: the form's own GET, no script involved.
            await browser.js("document.querySelector('.cohort-form select').value = 'size'")
            browser.loaded.clear()
            await browser.js("document.querySelector('.cohort-form button').click()")
            await asyncio.wait_for(browser.loaded.wait(), TIMEOUT_S)
            assert await browser.js("location.search") == "?cohort=size"
            assert "Parity by cohort: size" in await browser.js("document.getElementById('cohorts').textContent")
            await browser.screenshot(shots / "no-js.png")
            assert all(url.startswith(base + "/") for url in browser.requests), browser.requests
    finally:
        await runner.cleanup()
