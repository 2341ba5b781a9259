"""`admin.port`: /metrics and /shadow/* on a port of their own. Then the client-facing port
answers them 404 JSON (never proxied) and keeps /healthz and /readyz; the admin port serves the
gateway's own views only (nothing is proxied there), with the admin token guard as before. The
admin API's token is its own: the API key of the sides behind the gateway is not it."""

from __future__ import annotations

import aiohttp
import pytest

from shadow_proxy.config import Admin, GatewayConfigError, load_config
from tests.legacy.fixtures import free_port
from tests.shadow.conftest import GatewayFactory, gateway_config
from tests.shadow.test_gateway import DETAIL, at_stage, direct

TOKEN = "admin-token-for-the-admin-port-test"


async def test_admin_paths_move_to_the_admin_port(make_gateway: GatewayFactory, legacy_url: str) -> None:
    port = free_port()
    config = at_stage(gateway_config(legacy_url, admin=Admin(token=TOKEN, port=port, host="127.0.0.1")), "shadow")
    client = await make_gateway(config)
    admin = f"http://127.0.0.1:{port}"

    # The client-facing port: proxying and the probes as before, the admin paths gone.
    assert (r := await client.get(DETAIL)).status == 200 and await r.read() == (await direct(legacy_url, DETAIL))[1]
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/readyz")).status in (200, 503)
    for method, path in [
        ("GET", "/metrics"),
        ("GET", "/shadow/stage"),
        ("GET", "/shadow/report"),
        ("GET", "/shadow/mismatches"),
        ("POST", "/shadow/stage"),
        ("DELETE", "/shadow/anything/else"),
    ]:
        r = await client.request(method, path, headers={"Authorization": f"Bearer {TOKEN}"}, json={})
        assert (r.status, await r.json()) == (404, {"detail": "Not Found"}), (method, path)

    async with aiohttp.ClientSession() as http:
        # The admin port: the gateway's own views, counting the main port's traffic.
        async with http.get(admin + "/metrics") as r:
            assert r.status == 200
            lines = [line for line in (await r.text()).splitlines() if line.startswith("shadow_requests_total{")]
            assert any('route="GET /sessions/{session_id}"' in line and 'side="legacy"' in line for line in lines), (
                lines
            )
        async with http.get(admin + "/healthz") as r:
            assert r.status == 200 and (await r.json())["stages"] == {"reads": "shadow", "writes": "shadow"}
        async with http.get(admin + "/shadow/stage") as r:
            assert r.status == 200 and "groups" in await r.json()
        async with http.get(admin + "/shadow/report") as r:
            assert r.status == 200 and r.content_type == "text/html"
        # Nothing is proxied on the admin port.
        async with http.get(admin + DETAIL) as r:
            assert r.status == 404
        # Writes need the admin token; the sides' own key is not it.
        change = {"group": "reads", "stage": "primary", "reason": "admin port test"}
        async with http.post(admin + "/shadow/stage", json=change) as r:
            assert r.status == 401
        async with http.post(admin + "/shadow/stage", json=change, headers={"Authorization": "Bearer not-it"}) as r:
            assert r.status == 401
        async with http.post(admin + "/shadow/stage", json=change, headers={"Authorization": f"Bearer {TOKEN}"}) as r:
            assert r.status == 200 and (await r.json())["previous"] == "shadow"
    # The change made on the admin port is the main port's stage.
    assert (await (await client.get("/healthz")).json())["stages"]["reads"] == "primary"


async def test_without_an_admin_port_the_admin_paths_stay_on_the_main_port(
    make_gateway: GatewayFactory, legacy_url: str
) -> None:
    client = await make_gateway(at_stage(gateway_config(legacy_url, admin=Admin(token=TOKEN)), "shadow"))
    assert (await client.get("/metrics")).status == 200
    assert (await client.get("/shadow/stage")).status == 200
    assert (await client.post("/shadow/stage", json={"group": "reads", "stage": "legacy"})).status == 401


def test_admin_port_in_the_config(tmp_path: pytest.TempPathFactory) -> None:
    path = tmp_path / "gateway.yaml"  # type: ignore[operator]
    path.write_text("admin:\n  port: 8091\n  host: 127.0.0.1\n")
    config = load_config(path, env={})
    assert (config.admin.port, config.admin.host) == (8091, "127.0.0.1")
    assert load_config(None, env={}).admin.port is None
    for bad in ("port: 0", "port: 70000", "port: nine", "host: ''"):
        path.write_text(f"admin:\n  {bad}\n")
        with pytest.raises(GatewayConfigError, match=r"admin\.(port|host)"):
            load_config(path, env={})
