"""The gateway's configuration: YAML, environment over it, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from shadow_proxy.config import GatewayConfigError, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    return path


def test_environment_overrides_the_main_keys(tmp_path: Path) -> None:
    path = write(tmp_path, "legacy: {url: http://from-yaml}\nlisten: {port: 1}\n")
    config = load_config(path, env={"AGNO_LEGACY_URL": "http://from-env", "AGNO_GATEWAY_PORT": "9999",
                                    "AGNO_GATEWAY_STAGE": "primary", "AGNO_GATEWAY_SAMPLE_RATE": "0.25",
                                    "AGNO_NATIVE_URL": "http://native", "AGNO_GATEWAY_ADMIN_TOKEN": "t",
                                    "AGNO_GATEWAY_STORE_DSN": "postgresql://x", "AGNO_GATEWAY_RECORD": "/tmp/r.jsonl"})  # fmt: skip
    assert (config.legacy.url, config.listen.port, config.native.url, config.admin.token) == (
        "http://from-env", 9999, "http://native", "t")  # fmt: skip
    assert {g.stage for g in config.groups} == {"primary"} and {g.sample_rate for g in config.groups} == {0.25}
    assert (config.store.dsn, config.shadow.record) == ("postgresql://x", "/tmp/r.jsonl")


def test_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "rules: rules.yaml\nnoise_model: n.yaml\n"), env={})
    assert config.rules == str(tmp_path / "rules.yaml") and config.noise_model == str(tmp_path / "n.yaml")


def test_groups_from_yaml(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, """
groups:
  hot: {routes: ["GET /sessions"], stage: primary, sample_rate: 0.5, sticky: user_id}
  rest: {routes: ["GET /sessions/{session_id}"]}
"""), env={})  # fmt: skip
    hot = config.group_of("GET /sessions")
    assert hot is not None and (hot.name, hot.stage, hot.sample_rate, hot.sticky) == ("hot", "primary", 0.5, "user_id")
    assert config.group_of("POST /sessions") is None


@pytest.mark.parametrize("text,message", [
    ("nope: 1", "unknown key"),
    ("shadow: {queue_size: -1}", "shadow.queue_size must be >= 0"),
    ("shadow: {timeout_s: fast}", "shadow.timeout_s must be a number"),
    ("shadow: {mirror_writes: 'yes'}", "must be true or false"),
    ("gate: {window: 10, wat: 1}", "gate: unknown key"),
    ("groups: {a: {routes: ['GET /x'], stage: canary}}", "groups.a.stage must be one of"),
    ("groups: {a: {routes: ['GET /x'], sample_rate: 2}}", "sample_rate must be a number from 0 to 1"),
    ("groups: {a: {routes: ['/x']}}", "routes must list route templates"),
    ("groups: {a: {routes: ['GET /x']}, b: {routes: ['GET /x']}}", "is in two groups"),
    ("groups: {a: {routes: ['GET /x'], sticky: tenant}}", "sticky must be"),
    ("- a list", "top level must be a mapping"),
])  # fmt: skip
def test_errors_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(GatewayConfigError, match=message.replace("(", r"\(")):
        load_config(write(tmp_path, text), env={})


def test_bad_environment_values() -> None:
    with pytest.raises(GatewayConfigError, match="AGNO_GATEWAY_STAGE"):
        load_config(None, env={"AGNO_GATEWAY_STAGE": "canary"})
    with pytest.raises(GatewayConfigError, match="AGNO_GATEWAY_PORT"):
        load_config(None, env={"AGNO_GATEWAY_PORT": "http"})
    with pytest.raises(GatewayConfigError, match="AGNO_GATEWAY_SAMPLE_RATE"):
        load_config(None, env={"AGNO_GATEWAY_SAMPLE_RATE": "3"})
