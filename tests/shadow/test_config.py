"""The gateway's configuration: YAML, environment over it, and clear errors."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from shadow_proxy.config import GatewayConfig, GatewayConfigError, load_config

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    return path


def test_environment_overrides_the_main_keys(tmp_path: Path) -> None:
    path = write(tmp_path, "legacy: {url: http://from-yaml}\nlisten: {port: 1}\n")
    config = load_config(
        path,
        env={
            "AGNO_LEGACY_URL": "http://from-env",
            "AGNO_GATEWAY_PORT": "9999",
            "AGNO_GATEWAY_STAGE": "primary",
            "AGNO_GATEWAY_SAMPLE_RATE": "0.25",
            "AGNO_NATIVE_URL": "http://native",
            "AGNO_GATEWAY_ADMIN_TOKEN": "t",
            "AGNO_GATEWAY_STORE_DSN": "postgresql://x",
            "AGNO_GATEWAY_RECORD": "/tmp/r.jsonl",
        },
    )
    assert (config.legacy.url, config.listen.port, config.native.url, config.admin.token) == (
        "http://from-env",
        9999,
        "http://native",
        "t",
    )
    assert {g.stage for g in config.groups} == {"primary"} and {g.sample_rate for g in config.groups} == {0.25}
    assert (config.store.dsn, config.shadow.record) == ("postgresql://x", "/tmp/r.jsonl")


def test_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "rules: rules.yaml\nnoise_model: n.yaml\n"), env={})
    assert config.rules == str(tmp_path / "rules.yaml") and config.noise_model == str(tmp_path / "n.yaml")


def test_groups_from_yaml(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            """
groups:
  hot: {routes: ["GET /sessions"], stage: primary, sample_rate: 0.5, sticky: user_id}
  rest: {routes: ["GET /sessions/{session_id}"]}
""",
        ),
        env={},
    )
    hot = config.group_of("GET /sessions")
    assert hot is not None and (hot.name, hot.stage, hot.sample_rate, hot.sticky) == ("hot", "primary", 0.5, "user_id")
    assert config.group_of("POST /sessions") is None


@pytest.mark.parametrize(
    "text,message",
    [
        ("nope: 1", "unknown key"),
        ("shadow: {queue_size: -1}", "shadow.queue_size: Input should be greater than or equal to 1"),
        ("shadow: {timeout_s: fast}", "shadow.timeout_s: Input should be a valid number"),
        ("shadow: {mirror_writes: 'yes'}", "shadow.mirror_writes: Input should be a valid boolean"),
        ("gate: {window: 10, wat: 1}", "gate: unknown key"),
        (
            "groups: {a: {routes: ['GET /x'], stage: canary}}",
            "groups.a.stage: Input should be 'legacy', 'shadow', 'primary' or 'native'",
        ),
        (
            "groups: {a: {routes: ['GET /x'], sample_rate: 2}}",
            "groups.a.sample_rate: Input should be less than or equal to 1",
        ),
        ("groups: {a: {routes: ['/x']}}", "groups.a.routes[0]: Input should be a route template like"),
        ("groups: {a: {routes: ['GET /x']}, b: {routes: ['GET /x']}}", "is in two groups"),
        (
            "groups: {a: {routes: ['GET /x'], sticky: tenant}}",
            "groups.a.sticky: Input should be 'user_id' or 'session_id'",
        ),
        ("- a list", "top level must be a mapping"),
    ],
)
def test_errors_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(GatewayConfigError, match=re.escape(message)):
        load_config(write(tmp_path, text), env={})


def test_bad_environment_values() -> None:
    with pytest.raises(GatewayConfigError, match="AGNO_GATEWAY_STAGE"):
        load_config(None, env={"AGNO_GATEWAY_STAGE": "canary"})
    with pytest.raises(GatewayConfigError, match="AGNO_GATEWAY_PORT"):
        load_config(None, env={"AGNO_GATEWAY_PORT": "http"})
    with pytest.raises(GatewayConfigError, match="AGNO_GATEWAY_SAMPLE_RATE"):
        load_config(None, env={"AGNO_GATEWAY_SAMPLE_RATE": "3"})


# ---- every bad value is refused with its key -------------------------------------------------

BAD_VALUES = [
    ("listen: {port: 8090.5}", "listen.port: Input should be a valid integer"),
    ("listen: {port: 0}", "listen.port: Input should be greater than or equal to 1"),
    ("listen: {port: 65536}", "listen.port: Input should be less than or equal to 65535"),
    ("listen: {port: '8090'}", "listen.port: Input should be a valid integer"),
    ("listen: {port: true}", "listen.port: Input should be a valid integer"),
    ("listen: {host: 8}", "listen.host: Input should be a valid string"),
    ("listen: {max_body_bytes: 0}", "listen.max_body_bytes: Input should be greater than or equal to 1"),
    ("shadow: {queue_size: -5}", "shadow.queue_size: Input should be greater than or equal to 1"),
    ("shadow: {queue_size: 10.5}", "shadow.queue_size: Input should be a valid integer"),
    ("shadow: {max_inflight: 0}", "shadow.max_inflight: Input should be greater than or equal to 1"),
    ("shadow: {timeout_s: 0}", "shadow.timeout_s: Input should be greater than 0"),
    ("shadow: {timeout_s: .inf}", "shadow.timeout_s: Input should be a finite number"),
    ("shadow: {record_max_bytes: 1.0e8}", "shadow.record_max_bytes: Input should be a valid integer"),
    ("legacy: {timeout_s: '10'}", "legacy.timeout_s: Input should be a valid number"),
    ("legacy: {max_connections: false}", "legacy.max_connections: Input should be a valid integer"),
    ("legacy: {url: 7777}", "legacy.url: Input should be a valid string"),
    ("native: {nope: 1}", "native: unknown key(s) ['nope']"),
    ("store: {max_samples: 0}", "store.max_samples: Input should be greater than or equal to 1"),
    ("store: {redact_headers: authorization}", "store.redact_headers: Input should be a valid tuple"),
    ("store: {redact_paths: [a, 3]}", "store.redact_paths[1]: Input should be a valid string"),
    (
        "gate: {promote_max_mismatch_rate: 1.5}",
        "gate.promote_max_mismatch_rate: Input should be less than or equal to 1",
    ),
    ("gate: {window: 100.5}", "gate.window: Input should be a valid integer"),
    ("gate: {enabled: 1}", "gate.enabled: Input should be a valid boolean"),
    ("rollout: {poll_s: -1}", "rollout.poll_s: Input should be greater than 0"),
    ("admin: {protect_reads: 'no'}", "admin.protect_reads: Input should be a valid boolean"),
    ("admin: {token: 12345}", "admin.token: Input should be a valid string"),
    (
        "groups: {reads: {routes: ['GET /x'], sample_rate: 1.5}}",
        "groups.reads.sample_rate: Input should be less than or equal to 1",
    ),
    (
        "groups: {reads: {routes: ['GET /x'], sample_rate: '0.5'}}",
        "groups.reads.sample_rate: Input should be a valid number",
    ),
    ("groups: {reads: {routes: ['GET /x'], stage: canary}}", "groups.reads.stage: Input should be"),
    ("groups: {reads: {routes: ['GET /x'], extra: 1}}", "groups.reads: unknown key(s) ['extra']"),
    ("groups: {reads: {routes: []}}", "groups.reads.routes: Input should name at least one route"),
    ("groups: {reads: {routes: ['get /x']}}", "groups.reads.routes[0]: Input should be a route template"),
    ("groups: {reads: {}}", "groups.reads.routes: Field required"),
    ("groups: {reads: }", "groups.reads.routes: Field required"),
    ("groups: {reads: 3}", "groups.reads: Input should be a dictionary"),
    ("groups: {reads: {name: x, routes: ['GET /x']}}", "groups.reads: unknown key(s) ['name']"),
    ("groups: {}", "groups: name at least one group"),
    ("groups: [GET /x]", "groups: should be a mapping"),
    ("rules: 3", "rules: Input should be a valid string"),
    ("wat: 1", "unknown key(s) ['wat']"),
]


@pytest.mark.parametrize("text,message", BAD_VALUES, ids=[t for t, _ in BAD_VALUES])
def test_bad_values_are_refused_with_their_key(tmp_path: Path, text: str, message: str) -> None:
    """Each bad value stops the start-up with the file, the dotted key and the reason."""
    path = write(tmp_path, text)
    with pytest.raises(GatewayConfigError) as raised:
        load_config(path, env={})
    assert message in str(raised.value)
    assert str(raised.value).startswith(str(path))


def test_every_bad_key_is_reported_at_once(tmp_path: Path) -> None:
    """Two bad keys, two lines: an operator fixes them in one go."""
    with pytest.raises(GatewayConfigError) as raised:
        load_config(write(tmp_path, "listen: {port: 8090.5}\nshadow: {queue_size: 0}\n"), env={})
    lines = str(raised.value).splitlines()
    assert [line.split(": ")[1] for line in lines] == ["listen.port", "shadow.queue_size"]


@pytest.mark.parametrize(
    "name,value,message",
    [
        ("AGNO_GATEWAY_PORT", "8090.5", "AGNO_GATEWAY_PORT (listen.port): Input should be a valid integer"),
        ("AGNO_GATEWAY_PORT", "0", "AGNO_GATEWAY_PORT (listen.port): Input should be greater than or equal to 1"),
        (
            "AGNO_GATEWAY_SAMPLE_RATE",
            "1.5",
            "AGNO_GATEWAY_SAMPLE_RATE (groups.*.sample_rate): Input should be less than or equal to 1",
        ),
        (
            "AGNO_GATEWAY_SAMPLE_RATE",
            "half",
            "AGNO_GATEWAY_SAMPLE_RATE (groups.*.sample_rate): Input should be a valid number",
        ),
        ("AGNO_GATEWAY_STAGE", "canary", "AGNO_GATEWAY_STAGE (groups.*.stage): Input should be"),
    ],
)
def test_bad_environment_values_name_variable_and_key(name: str, value: str, message: str) -> None:
    with pytest.raises(GatewayConfigError) as raised:
        load_config(None, env={name: value})
    assert message in str(raised.value)


def test_the_shipped_file_is_the_defaults() -> None:
    """config/gateway.yaml shows every key with its default: loading it changes nothing but the
    rules path (relative to the file)."""
    shipped = load_config(REPO / "config" / "gateway.yaml", env={})
    assert dataclasses.replace(shipped, rules=None) == GatewayConfig()
    assert shipped.rules == str(REPO / "config" / "comparator.yaml")


def test_empty_sections_and_null_are_the_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "listen:\nshadow:\ngroups:\nrules: null\n"), env={})
    assert config == GatewayConfig()


def test_replace_validates_too() -> None:
    """dataclasses.replace (used by the CLI's --port) goes through the same model."""
    listen = load_config(None, env={}).listen
    assert dataclasses.replace(listen, port=9000).port == 9000
    with pytest.raises(ValidationError):
        dataclasses.replace(listen, port=8090.5)  # type: ignore[arg-type]


def test_ints_are_accepted_for_floats(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "shadow: {timeout_s: 3}\ngate: {z: 2}\n"), env={})
    assert (config.shadow.timeout_s, config.gate.z) == (3.0, 2.0)
    assert isinstance(config.shadow.timeout_s, float)


def test_the_documented_variables_are_the_declared_ones() -> None:
    """The module's table of variables and the `Env(...)` markers on the fields agree."""
    import typing

    from agentos_session.validation import Env
    from shadow_proxy import config as module

    declared = set()
    for section in (
        module.Listen,
        module.Legacy,
        module.Native,
        module.Shadow,
        module.Group,
        module.Store,
        module.Gate,
        module.Rollout,
        module.Admin,
    ):
        for info in section.__pydantic_fields__.values():  # type: ignore[attr-defined]
            declared |= {m.name for m in info.metadata if isinstance(m, Env)}
    documented = set(re.findall(r"`(AGNO_[A-Z_]+)`", typing.cast(str, module.__doc__)))
    assert declared == documented
