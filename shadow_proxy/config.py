"""The gateway's configuration: `config/gateway.yaml` (every key documented there, every key
with a default) with environment variables over the main keys, read once at the edge.

| Variable | Key |
|---|---|
| `AGNO_GATEWAY_HOST`, `AGNO_GATEWAY_PORT` | `listen.host`, `listen.port` |
| `AGNO_LEGACY_URL` | `legacy.url` |
| `AGNO_NATIVE_URL` | `native.url` (the native side over HTTP instead of in-process) |
| `AGNO_GATEWAY_STAGE` | the initial `stage` of every group (once a stage is stored, the stored one wins; change it with `POST /shadow/stage`) |
| `AGNO_GATEWAY_SAMPLE_RATE` | the `sample_rate` of every group |
| `AGNO_GATEWAY_STORE_DSN` | `store.dsn` |
| `AGNO_GATEWAY_ADMIN_TOKEN` | `admin.token` |
| `AGNO_GATEWAY_RECORD` | `shadow.record` |
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping, Optional, get_args

import yaml

from session_service.routes import SESSION_ROUTES

Stage = Literal["legacy", "shadow", "primary", "native"]
STAGES: tuple[Stage, ...] = get_args(Stage)
StickyKey = Literal["user_id", "session_id"]

# The default groups: the sessions router's reads and its writes.
READ_ROUTES = tuple(f"{r.method} {r.template}" for r in SESSION_ROUTES if r.method == "GET")
WRITE_ROUTES = tuple(f"{r.method} {r.template}" for r in SESSION_ROUTES if r.method != "GET")


class GatewayConfigError(ValueError):
    """The configuration cannot be used; the message names the key."""


@dataclass(frozen=True)
class Listen:
    host: str = "0.0.0.0"
    port: int = 8090
    max_body_bytes: int = 8 * 1024 * 1024  # a larger client body gets 413 from the gateway


@dataclass(frozen=True)
class Legacy:
    url: Optional[str] = None  # None: no legacy side (groups must then be at stage `native`)
    timeout_s: float = 10.0
    max_connections: int = 100


@dataclass(frozen=True)
class Native:
    url: Optional[str] = None  # None: in-process (the native app runs inside the gateway)
    timeout_s: float = 5.0
    max_connections: int = 100


@dataclass(frozen=True)
class Shadow:
    timeout_s: float = 5.0
    queue_size: int = 1000
    max_inflight: int = 32
    max_body_bytes: int = 1_048_576
    compare_offload_bytes: int = 65_536
    mirror_writes: bool = False
    record: Optional[str] = None
    record_max_bytes: int = 100_000_000


@dataclass(frozen=True)
class Group:
    """A set of route templates that move through the stages together."""

    name: str
    routes: tuple[str, ...]
    stage: Stage = "shadow"
    sample_rate: float = 1.0
    sticky: Optional[StickyKey] = None


@dataclass(frozen=True)
class Store:
    dsn: Optional[str] = None  # None: the native service's database (the embedded one if none)
    max_samples: int = 10_000
    max_age_s: float = 7 * 24 * 3600.0
    redact_paths: tuple[str, ...] = ()
    redact_headers: tuple[str, ...] = ("authorization", "cookie", "set-cookie", "x-api-key")


@dataclass(frozen=True)
class Gate:
    """The parity gate's policy (see shadow_proxy/gate.py: rates are judged by Wilson bounds)."""

    enabled: bool = True
    window: int = 2000
    min_samples: int = 500
    promote_max_mismatch_rate: float = 0.01
    allow_native: bool = False
    min_rollback_samples: int = 50
    rollback_mismatch_rate: float = 0.02
    rollback_error_rate: float = 0.05
    z: float = 1.96
    interval_s: float = 5.0


@dataclass(frozen=True)
class Rollout:
    poll_s: float = 2.0


@dataclass(frozen=True)
class Admin:
    token: Optional[str] = None
    protect_reads: bool = False  # also require the token for GET /shadow/* (report, samples, stages)


@dataclass(frozen=True)
class GatewayConfig:
    listen: Listen = field(default_factory=Listen)
    legacy: Legacy = field(default_factory=Legacy)
    native: Native = field(default_factory=Native)
    shadow: Shadow = field(default_factory=Shadow)
    groups: tuple[Group, ...] = (Group("reads", READ_ROUTES), Group("writes", WRITE_ROUTES))
    rules: Optional[str] = None
    noise_model: Optional[str] = None
    store: Store = field(default_factory=Store)
    gate: Gate = field(default_factory=Gate)
    rollout: Rollout = field(default_factory=Rollout)
    admin: Admin = field(default_factory=Admin)

    def group_of(self, route: str) -> Optional[Group]:
        for group in self.groups:
            if route in group.routes:
                return group
        return None

    def group(self, name: str) -> Optional[Group]:
        return next((g for g in self.groups if g.name == name), None)


_SECTIONS = {"listen": Listen, "legacy": Legacy, "native": Native, "shadow": Shadow, "store": Store, "gate": Gate,
             "rollout": Rollout, "admin": Admin}  # fmt: skip


def _section(cls: type, data: Any, where: str) -> Any:
    if data is None:
        return cls()
    if not isinstance(data, Mapping):
        raise GatewayConfigError(f"{where} must be a mapping")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(fields)
    if unknown:
        raise GatewayConfigError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(fields)}")
    values = {}
    for name, value in data.items():
        default = getattr(cls(), name) if name != "name" else None
        values[name] = _coerce(value, default, f"{where}.{name}")
    return cls(**values)


def _coerce(value: Any, default: Any, where: str) -> Any:
    if value is None:
        return None
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise GatewayConfigError(f"{where} must be true or false")
        return value
    if isinstance(default, (int, float)) and not isinstance(default, bool):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise GatewayConfigError(f"{where} must be a number, got {value!r}")
        if value < 0:
            raise GatewayConfigError(f"{where} must be >= 0, got {value!r}")
        return type(default)(value) if isinstance(default, int) and float(value).is_integer() else float(value)
    if isinstance(default, tuple):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise GatewayConfigError(f"{where} must be a list of strings")
        return tuple(value)
    if not isinstance(value, str):
        raise GatewayConfigError(f"{where} must be a string")
    return value


def _groups(data: Any) -> tuple[Group, ...]:
    if data is None:
        return GatewayConfig().groups
    if not isinstance(data, Mapping) or not data:
        raise GatewayConfigError("groups must be a non-empty mapping of name -> {routes, stage, sample_rate, sticky}")
    groups, seen = [], set()
    for name, entry in data.items():
        where = f"groups.{name}"
        entry = dict(entry or {})
        allowed = {"routes", "stage", "sample_rate", "sticky"}
        if set(entry) - allowed:
            raise GatewayConfigError(f"{where}: unknown key(s) {sorted(set(entry) - allowed)}; allowed: {sorted(allowed)}")
        routes = entry.get("routes")
        if not isinstance(routes, list) or not routes or not all(isinstance(r, str) and " /" in r for r in routes):
            raise GatewayConfigError(f"{where}.routes must list route templates like 'GET /sessions/{{session_id}}'")
        for route in routes:
            if route in seen:
                raise GatewayConfigError(f"{where}: route {route!r} is in two groups")
            seen.add(route)
        stage = entry.get("stage", "shadow")
        if stage not in STAGES:
            raise GatewayConfigError(f"{where}.stage must be one of {list(STAGES)}, got {stage!r}")
        rate = entry.get("sample_rate", 1.0)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
            raise GatewayConfigError(f"{where}.sample_rate must be a number from 0 to 1, got {rate!r}")
        sticky = entry.get("sticky")
        if sticky not in (None, *get_args(StickyKey)):
            raise GatewayConfigError(f"{where}.sticky must be user_id, session_id or null, got {sticky!r}")
        groups.append(Group(str(name), tuple(routes), stage, float(rate), sticky))
    return tuple(groups)


def load_config(path: Optional[str | Path] = None, env: Optional[Mapping[str, str]] = None) -> GatewayConfig:
    """The YAML file (relative paths in it are relative to the file), then the environment."""
    env = os.environ if env is None else env
    data: Mapping[str, Any] = {}
    base = Path(".")
    if path is not None:
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise GatewayConfigError(f"{path}: {exc}") from exc
        if not isinstance(data, Mapping):
            raise GatewayConfigError(f"{path}: the top level must be a mapping")
        base = Path(path).resolve().parent
    allowed = set(_SECTIONS) | {"groups", "rules", "noise_model"}
    if set(data) - allowed:
        raise GatewayConfigError(f"unknown key(s) {sorted(set(data) - allowed)}; allowed: {sorted(allowed)}")
    sections = {name: _section(cls, data.get(name), name) for name, cls in _SECTIONS.items()}
    config = GatewayConfig(groups=_groups(data.get("groups")), rules=_path(data.get("rules"), base, "rules"),
                           noise_model=_path(data.get("noise_model"), base, "noise_model"), **sections)  # fmt: skip
    return _apply_env(config, env)


def _path(value: Any, base: Path, where: str) -> Optional[str]:
    if value is None:
        return None
    if not isinstance(value, str):
        raise GatewayConfigError(f"{where} must be a file path")
    return str(base / value)


def _apply_env(config: GatewayConfig, env: Mapping[str, str]) -> GatewayConfig:
    def num(name: str, kind: type) -> Any:
        try:
            return kind(env[name])
        except ValueError:
            raise GatewayConfigError(f"{name} must be a {kind.__name__}, got {env[name]!r}") from None

    r = dataclasses.replace
    if env.get("AGNO_GATEWAY_HOST"):
        config = r(config, listen=r(config.listen, host=env["AGNO_GATEWAY_HOST"]))
    if env.get("AGNO_GATEWAY_PORT"):
        config = r(config, listen=r(config.listen, port=num("AGNO_GATEWAY_PORT", int)))
    if env.get("AGNO_LEGACY_URL"):
        config = r(config, legacy=r(config.legacy, url=env["AGNO_LEGACY_URL"]))
    if env.get("AGNO_NATIVE_URL"):
        config = r(config, native=r(config.native, url=env["AGNO_NATIVE_URL"]))
    if env.get("AGNO_GATEWAY_STORE_DSN"):
        config = r(config, store=r(config.store, dsn=env["AGNO_GATEWAY_STORE_DSN"]))
    if env.get("AGNO_GATEWAY_ADMIN_TOKEN"):
        config = r(config, admin=r(config.admin, token=env["AGNO_GATEWAY_ADMIN_TOKEN"]))
    if env.get("AGNO_GATEWAY_RECORD"):
        config = r(config, shadow=r(config.shadow, record=env["AGNO_GATEWAY_RECORD"]))
    if env.get("AGNO_GATEWAY_STAGE"):
        stage = env["AGNO_GATEWAY_STAGE"]
        if stage not in STAGES:
            raise GatewayConfigError(f"AGNO_GATEWAY_STAGE must be one of {list(STAGES)}, got {stage!r}")
        config = r(config, groups=tuple(r(g, stage=stage) for g in config.groups))
    if env.get("AGNO_GATEWAY_SAMPLE_RATE"):
        rate = num("AGNO_GATEWAY_SAMPLE_RATE", float)
        if not 0 <= rate <= 1:
            raise GatewayConfigError("AGNO_GATEWAY_SAMPLE_RATE must be from 0 to 1")
        config = r(config, groups=tuple(r(g, sample_rate=rate) for g in config.groups))
    return config
