"""Per-side request transforms (`legacy.transform`, `native.transform`): the real AgentOS with
`OS_SECURITY_KEY=A` as legacy, the native service with key B, and clients sending key C (which
neither side accepts). Each side gets its own key on every request the gateway sends it, at
every stage and on every path (client request, mirrored copy, recheck, write read-back,
fallback, the gateway's own probes), and neither key is found in the recording, the stored
mismatch samples or the logs. The Host rewrite is seen by legacy (through a pass-through fault
proxy that keeps the headers it received).
"""

from __future__ import annotations

import dataclasses
import io
import logging
import secrets
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from agentos_session.logs import JsonLogFormatter
from comparator import Request
from harness.services import reset_gateway_tables
from session_service.config import load_settings
from shadow_proxy.app import create_app
from shadow_proxy.config import GatewayConfig, GatewayConfigError, Legacy, Native, Shadow, Transform, load_config
from shadow_proxy.transforms import Headers, TransformedSide, apply, transformed, unwrapped
from tests.legacy.fixtures import SECURITY_KEY
from tests.shadow.conftest import gateway_config
from tests.shadow.faults import FaultyLegacy
from tests.shadow.test_gateway import DETAIL, DETAIL_ROUTE, at_stage, gw, metric, settled

LEGACY_HOST = "agentos.internal"


def transforms_yaml(tmp_path: Path) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(
        """
legacy:
  transform:
    set: {Authorization: {env: LEGACY_AUTHORIZATION}, X-Side-Token: {env: SIDE_TOKEN}}
    remove: [X-Debug]
    host: agentos.internal
native:
  transform:
    set: {Authorization: {env: NATIVE_AUTHORIZATION}}
"""
    )
    return path


# ---- configuration and the pure transform ---------------------------------------------------


def test_values_come_from_the_environment_and_stay_secret(tmp_path: Path) -> None:
    env = {"LEGACY_AUTHORIZATION": "Bearer key-a-1", "SIDE_TOKEN": "side-2", "NATIVE_AUTHORIZATION": "Bearer key-b-3"}
    config = load_config(transforms_yaml(tmp_path), env=env)
    assert config.legacy.transform.set["Authorization"].get_secret_value() == "Bearer key-a-1"
    assert config.native.transform.set["Authorization"].get_secret_value() == "Bearer key-b-3"
    assert config.legacy.transform.host == LEGACY_HOST
    # No repr of the configuration shows a value (it may be logged, printed, put in an error).
    assert not any(value in repr(config) for value in ("key-a-1", "side-2", "key-b-3"))
    # The names set join the redaction policy, lower-cased, once each.
    assert config.redacted_headers == ("authorization", "cookie", "set-cookie", "x-api-key", "x-side-token")


@pytest.mark.parametrize(
    "transform,message",
    [
        (
            "set: {Authorization: {env: NOPE}}",
            "legacy.transform.set.Authorization: environment variable NOPE is not set",
        ),
        (
            "set: {Authorization: {wat: X}}",
            "legacy.transform.set.Authorization: Input should be a string or {env: VARIABLE}",
        ),
        ("set: {Content-Length: '1'}", "legacy.transform.set.Content-Length: Content-Length cannot be set or removed"),
        ("set: {Host: x}", "legacy.transform.set.Host: Host cannot be set or removed (use `host` for Host)"),
        ("set: {'bad name': x}", "legacy.transform.set['bad name']: Input should be an HTTP header name"),
        ("set: {X-A: 1}", "legacy.transform.set.X-A: Input should be a valid string"),
        ('set: {X-A: "a\\nb"}', "legacy.transform.set.X-A: Input should be a header value on one line"),
        ("remove: [Transfer-Encoding]", "legacy.transform.remove[0]: Transfer-Encoding cannot be set or removed"),
        ("set: {X-A: a}\n    remove: [x-a]", "legacy.transform: ['x-a'] both set and removed"),
        ("set: {X-A: a, x-a: b}", "legacy.transform: set names ['x-a'] more than once"),
        ("host: 'a b'", "legacy.transform.host: Input should be a host name, with an optional :port"),
        ("wat: 1", "legacy.transform: unknown key(s) ['wat']; allowed: ['host', 'remove', 'set']"),
    ],
)
def test_a_bad_transform_stops_the_start_with_its_key(tmp_path: Path, transform: str, message: str) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(f"legacy:\n  transform:\n    {transform}\n")
    with pytest.raises(GatewayConfigError) as error:
        load_config(path, env={"SECRET": "never-shown"})
    assert message in str(error.value)
    assert "never-shown" not in str(error.value)


def test_apply_removes_then_sets_whatever_the_case() -> None:
    headers = Headers.of(
        Transform(set={"Authorization": SecretStr("Bearer A")}, remove=("X-Debug",), host="agentos.internal")
    )
    request = Request(
        "GET", "/sessions", {"authorization": "Bearer C", "x-debug": "1", "Accept": "application/json"}, b""
    )
    sent = apply(request, headers)
    assert sent.headers == {"Accept": "application/json", "Authorization": "Bearer A", "Host": "agentos.internal"}
    assert request.headers["authorization"] == "Bearer C"  # the original is untouched (it is what is stored)


def test_no_transform_no_wrapper() -> None:
    class Dummy:
        name = "legacy"

    side: Any = Dummy()
    assert transformed(side, Transform()) is side
    wrapped = transformed(side, Transform(remove=("X-Debug",)))
    assert isinstance(wrapped, TransformedSide) and unwrapped(wrapped) is side and wrapped.name == "legacy"


# ---- the real sides, each with its own key --------------------------------------------------


@pytest.fixture
async def captured_logs() -> AsyncIterator[io.StringIO]:
    """Every log line, at DEBUG, as the gateway writes them (JSON, with their fields)."""
    text = io.StringIO()
    handler = logging.StreamHandler(text)
    handler.setFormatter(JsonLogFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield text
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


async def start(config: GatewayConfig, pg_dsn: str, native_key: str) -> TestClient:
    """A gateway whose in-process native service requires `native_key`, at the configured
    stages (none stored by an earlier one)."""
    await reset_gateway_tables(pg_dsn)
    config = dataclasses.replace(config, store=dataclasses.replace(config.store, dsn=pg_dsn))
    settings = load_settings({"AGNO_PG_DSN": pg_dsn, "AGNO_DEFAULT_DB_ID": "main-db", "OS_SECURITY_KEY": native_key})
    client = TestClient(TestServer(create_app(config, native_settings=settings)))
    await client.start_server()
    return client


def secured(
    legacy_url: str, transforms: GatewayConfig, tmp: Path | None = None, native: Native | None = None
) -> GatewayConfig:
    return gateway_config(
        legacy_url,
        legacy=Legacy(url=legacy_url, timeout_s=10.0, transform=transforms.legacy.transform),
        native=dataclasses.replace(native or Native(), transform=transforms.native.transform),
        shadow=Shadow(timeout_s=5.0, record=str(tmp / "recording.jsonl") if tmp else None),
    )


def count(client: TestClient, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include `labels`."""
    total = 0.0
    for family in gw(client).metrics.registry.collect():
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


async def test_each_side_gets_its_own_key_on_every_path_and_no_key_is_kept(
    pg_dsn: str, seeded: None, legacy_secured_url: str, tmp_path: Path, captured_logs: io.StringIO
) -> None:
    tag = secrets.token_hex(6)
    key_a, key_b, key_c = SECURITY_KEY, f"native-key-{tag}", f"client-key-{tag}"
    side_token, client_token = f"side-token-{tag}", f"client-token-{tag}"
    env = {
        "LEGACY_AUTHORIZATION": f"Bearer {key_a}",
        "NATIVE_AUTHORIZATION": f"Bearer {key_b}",
        "SIDE_TOKEN": side_token,
    }
    transforms = load_config(transforms_yaml(tmp_path), env=env)
    # The client's key opens neither side: without the transforms every answer would be a 401.
    client_headers = {"Authorization": f"Bearer {key_c}", "X-Side-Token": client_token, "X-Debug": "1"}
    async with aiohttp.ClientSession() as direct:
        async with direct.get(legacy_secured_url + DETAIL, headers=client_headers) as r:
            assert r.status == 401
        async with direct.get(legacy_secured_url + DETAIL, headers={"Authorization": f"Bearer {key_a}"}) as r:
            assert r.status == 200
            expected = await r.read()

    await reset_gateway_tables(pg_dsn)
    clients: list[TestClient] = []
    session_id = f"transform-{uuid.uuid4().hex[:8]}"
    try:
        async with FaultyLegacy(legacy_secured_url) as legacy:
            config = secured(legacy.url, transforms, tmp_path)
            for stage in ("legacy", "shadow", "primary", "native"):
                client = await start(at_stage(config, stage), pg_dsn, key_b)
                clients.append(client)
                r = await client.get(DETAIL, headers=client_headers)
                assert (r.status, await r.read()) == (200, expected), stage
                if stage == "shadow":  # a write, verified by reading it back from both sides
                    r = await client.post("/sessions", json={"session_id": session_id}, headers=client_headers)
                    assert r.status == 201, await r.text()
                await settled(client)
                if stage in ("shadow", "primary"):  # the mirrored copy reached the other side, with its key
                    assert metric(client, "shadow_comparisons_total", route=DETAIL_ROUTE, result="match") == 1
                    assert metric(client, "shadow_comparisons_total", route=DETAIL_ROUTE, result="mismatch") == 0
                if stage == "shadow":
                    assert metric(client, "shadow_comparisons_total", route="POST /sessions", result="match") >= 1
                # The gateway's own probe of legacy (GET /config) was let in too.
                learner = gw(client).dbids
                assert learner is not None and learner.current.error is None
                assert count(client, "shadow_requests_total", code_class="4xx") == 0, stage
                # The wrapped in-process native is still seen as such: its readiness is its
                # databases' own check and its metrics are on the gateway's page.
                r = await client.get("/readyz")
                assert r.status == 200, await r.text()
                r = await client.get("/metrics")
                assert "agno_session_requests_total" in await r.text()
                await client.close()

            # A fallback to legacy: the in-process native "times out" at once.
            client = await start(
                at_stage(secured(legacy.url, transforms, tmp_path, Native(timeout_s=0.000001)), "primary"),
                pg_dsn,
                key_b,
            )
            clients.append(client)
            r = await client.get(DETAIL, headers=client_headers)
            assert (r.status, await r.read()) == (200, expected)
            assert metric(client, "shadow_fallbacks_total", route=DETAIL_ROUTE, reason="timeout", side="legacy") == 1
            await client.close()

            # Mismatches (a diverging legacy) are asked again of both sides, and stored.
            client = await start(at_stage(config, "shadow"), pg_dsn, key_b)
            clients.append(client)
            legacy.mode = "mutate"
            for target in (DETAIL, "/sessions?type=agent"):
                r = await client.get(target, headers=client_headers)
                assert r.status == 200
            await settled(client)
            assert count(client, "shadow_rechecks_total", outcome="confirmed") == 2
            assert count(client, "shadow_requests_total", side="native", code_class="2xx") >= 4
            assert count(client, "shadow_requests_total", code_class="4xx") == 0
            await client.close()

            # Every request legacy got from the gateway (client's, copies, rechecks, read-backs,
            # fallbacks, probes) carried legacy's key and the rewritten Host, and none the client's.
            assert len(legacy.received) >= 12
            for headers in legacy.received:
                lower = {k.lower(): v for k, v in headers.items()}
                assert lower["authorization"] == f"Bearer {key_a}"
                assert lower["host"] == LEGACY_HOST
                assert "x-debug" not in lower
                if "x-forwarded-for" in lower:  # not the probes: they send no client header
                    assert lower["x-side-token"] == side_token
    finally:
        for client in clients:
            await client.close()
        async with aiohttp.ClientSession() as direct:
            url = legacy_secured_url + f"/sessions/{session_id}"
            async with direct.delete(url, headers={"Authorization": f"Bearer {key_a}"}) as r:
                assert r.status in (204, 404)

    conn = await asyncpg.connect(pg_dsn)
    try:
        rows = [str(dict(row)) for row in await conn.fetch("SELECT * FROM shadow_mismatches")]
    finally:
        await conn.close()
    assert len(rows) >= 2, "the mismatches were stored"
    lines = (tmp_path / "recording.jsonl").read_text().splitlines()
    assert len(lines) >= 4, "the mirrored requests were recorded"
    logs = captured_logs.getvalue().splitlines()
    assert any('"shadow_proxy.access"' in line for line in logs)
    # The client's value of a header a transform sets is redacted too (the name joined the policy).
    for what, secret in {
        "legacy key": key_a,
        "native key": key_b,
        "client key": key_c,
        "side token": side_token,
        "client's side token": client_token,
    }.items():
        leaks = {
            "stored samples": sum(secret in row for row in rows),
            "recording": sum(secret in line for line in lines),
            "logs": [line for line in logs if secret in line][:3],
        }
        assert not any(leaks.values()), f"the {what} leaked: {leaks}"


# ---- replay ----------------------------------------------------------------------------------


def test_replay_applies_the_gateways_transforms(
    tmp_path: Path, legacy_url: str, legacy_secured_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A recording (credentials redacted) replayed to an open AgentOS and one with a key: without
    the transforms the keyed side answers 401 (a mismatch); with `--config`, native's
    transform gives it its key and every check matches."""
    from tests.shadow.test_replay import cli, record

    recording = record(
        tmp_path / "reads.jsonl",
        [Request("GET", t, {"Authorization": "Bearer x"}) for t in (DETAIL, "/sessions?type=agent", f"{DETAIL}/runs")],
    )
    config = tmp_path / "gateway.yaml"
    config.write_text("native:\n  transform:\n    set: {Authorization: {env: REPLAY_NATIVE_AUTHORIZATION}}\n")
    argv = (recording, "--legacy", legacy_url, "--native", legacy_secured_url)

    run = cli(*argv)
    assert run.code == 1 and "3 mismatch" in run.out, run.out + run.err

    run = cli(*argv, "--config", config)
    assert run.code == 2 and "native.transform.set.Authorization: environment variable" in run.err, run.err

    monkeypatch.setenv("REPLAY_NATIVE_AUTHORIZATION", f"Bearer {SECURITY_KEY}")
    run = cli(*argv, "--config", config)
    assert run.code == 0 and "3 match" in run.out, run.out + run.err
    assert "redacted header(s) authorization left out" in run.err  # still: legacy's transform sets none
    assert SECURITY_KEY not in run.out + run.err


def test_the_gateway_does_not_start_without_a_transforms_variable(tmp_path: Path) -> None:
    """`agentos-session gateway` itself: an unset variable stops it before anything listens,
    naming the key and the variable (in its JSON log line); a value refused for its form is
    not echoed."""
    import subprocess
    import sys

    from harness.processes import REPO, environ

    config = tmp_path / "gateway.yaml"
    config.write_text(
        "legacy:\n  url: http://127.0.0.1:9\n  transform:\n    set: {Authorization: {env: GW_TEST_LEGACY_AUTH}}\n"
    )
    argv = [sys.executable, "-m", "agentos_session.cli", "gateway", "--config", str(config)]
    env = environ({}, scrub=("GW_TEST_LEGACY_AUTH",))
    run = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert (
        "legacy.transform.set.Authorization: environment variable GW_TEST_LEGACY_AUTH is not set"
        in run.stdout + run.stderr
    )

    env["GW_TEST_LEGACY_AUTH"] = "Bearer secret-value\nX-Injected: 1"
    run = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert "legacy.transform.set.Authorization: Input should be a header value on one line" in run.stdout + run.stderr
    assert "secret-value" not in run.stdout + run.stderr
