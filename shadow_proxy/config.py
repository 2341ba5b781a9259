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

Per-side request transforms (`legacy.transform`, `native.transform`: headers set or removed on
every request the gateway sends to that side, and a Host rewrite) take a header's value from
the file or, for a secret, from the environment: `{env: NAME}`, read once at start-up (a variable
that is not set stops it, with the key's path). The values are held as `SecretStr`, so no repr
or log of the configuration shows them, and the names set join `redacted_headers`.

Each section is a frozen pydantic dataclass (`extra="forbid"`, strict scalars, bounds), so a bad
value, from the file or from a variable, stops the start-up with its dotted key and the reason:
`listen.port: Input should be a valid integer`, `groups.reads.sample_rate: Input should be less
than or equal to 1`, `AGNO_GATEWAY_PORT (listen.port): ...`. The variables are declared on the
fields they override (`Env(...)`) and applied by one function. `dataclasses.replace` works on
every section and validates again.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import field
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    SecretStr,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.dataclasses import dataclass
from pydantic_core import PydanticCustomError

from agentos_session.defaults import default_file
from agentos_session.sessions_api import SESSIONS, route_label
from agentos_session.validation import (
    Count,
    Env,
    Flag,
    NonEmptyText,
    NonNegativeInt,
    Port,
    PositiveFloat,
    Rate,
    RouteLabel,
    Seconds,
    Text,
    apply_env,
    format_errors,
)
from comparator import Rules

Stage = Literal["legacy", "shadow", "primary", "native"]
STAGES: tuple[Stage, ...] = get_args(Stage)
StickyKey = Literal["user_id", "session_id"]

# The default groups: the sessions router's reads and its writes.
READ_ROUTES = tuple(r.label for r in SESSIONS.routes if r.method == "GET")
WRITE_ROUTES = tuple(r.label for r in SESSIONS.routes if r.method != "GET")

MODEL = ConfigDict(extra="forbid")
Url = NonEmptyText | None


def _non_empty(routes: tuple[str, ...]) -> tuple[str, ...]:
    # An after-validator (not min_length): it speaks only once every route is valid.
    if not routes:
        raise PydanticCustomError("too_short", "Input should name at least one route")
    return routes


# ---- per-side request transforms -------------------------------------------------------------

_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # RFC 9110 field-name
# What a transform may not set or remove: the connection's own headers (the client library
# computes them per request; a wrong Content-Length would corrupt the stream) and Host (the
# `host` key rewrites it, so there is one way to say it).
NOT_TRANSFORMED = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
        "proxy-connection",
    }
)


def _header_name(name: str) -> str:
    if not _TOKEN.match(name):
        raise PydanticCustomError("header_name", "Input should be an HTTP header name (letters, digits, '-')")
    if name.lower() in NOT_TRANSFORMED:
        raise PydanticCustomError(
            "header_name", "{name} cannot be set or removed (use `host` for Host)", {"name": name}
        )
    return name


def _from_env(value: Any, info: ValidationInfo) -> Any:
    """`{env: NAME}` -> the variable's value (from the validation context's `env`, else the
    process environment). A missing variable is an error at this key, naming the variable only."""
    if not isinstance(value, Mapping):
        return value
    if set(value) != {"env"} or not isinstance(value["env"], str) or not value["env"]:
        raise PydanticCustomError("header_value", "Input should be a string or {env: VARIABLE}")
    env = (info.context or {}).get("env", os.environ)
    name = value["env"]
    if name not in env:
        raise PydanticCustomError("env_missing", "environment variable {name} is not set", {"name": name})
    return env[name]


def _header_value(value: SecretStr) -> SecretStr:
    if any(c in value.get_secret_value() for c in "\r\n\0"):
        raise PydanticCustomError("header_value", "Input should be a header value on one line")
    return value


HeaderName = Annotated[str, AfterValidator(_header_name)]
HeaderValue = Annotated[SecretStr, BeforeValidator(_from_env), AfterValidator(_header_value)]
"""A literal string, or `{env: NAME}`: the value of that environment variable at start-up."""


def _host(value: str) -> str:
    if any(c.isspace() or c in "/@?#" for c in value):
        raise PydanticCustomError("host", "Input should be a host name, with an optional :port")
    return value


@dataclass(frozen=True, config=MODEL)
class Transform:
    """What the gateway changes on every request it sends to one side (the client's request,
    mirrored copies, fallbacks, rechecks, write read-backs, its own probes): headers removed,
    then headers set (replacing any the client sent, whatever their case), then Host."""

    set: dict[HeaderName, HeaderValue] = field(default_factory=dict)
    remove: tuple[HeaderName, ...] = ()
    host: Annotated[NonEmptyText, AfterValidator(_host)] | None = None

    @model_validator(mode="after")
    def _one_meaning_per_header(self) -> Transform:
        names = [n.lower() for n in self.set]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"set names {twice} more than once (header names ignore case)")
        both = sorted(set(names) & {n.lower() for n in self.remove})
        if both:
            raise ValueError(f"{both} both set and removed")
        return self

    @property
    def empty(self) -> bool:
        return not self.set and not self.remove and self.host is None

    def __hash__(self) -> int:  # the configuration stays hashable, as with only tuples in it
        return hash((tuple(self.set.items()), self.remove, self.host))


class GatewayConfigError(ValueError):
    """The configuration cannot be used; the message names the key (one line per bad key)."""


@dataclass(frozen=True, config=MODEL)
class Listen:
    host: Annotated[NonEmptyText, Env("AGNO_GATEWAY_HOST")] = "0.0.0.0"
    port: Annotated[Port, Env("AGNO_GATEWAY_PORT")] = 8090
    max_body_bytes: Count = 8 * 1024 * 1024  # a larger client body gets 413 from the gateway


@dataclass(frozen=True, config=MODEL)
class Legacy:
    url: Annotated[Url, Env("AGNO_LEGACY_URL")] = None  # None: no legacy side (groups must then be at stage `native`)
    timeout_s: Seconds = 10.0
    max_connections: Count = 100
    transform: Transform = field(default_factory=Transform)


@dataclass(frozen=True, config=MODEL)
class Native:
    url: Annotated[Url, Env("AGNO_NATIVE_URL")] = None  # None: in-process (the native app runs inside the gateway)
    timeout_s: Seconds = 5.0
    max_connections: Count = 100
    transform: Transform = field(default_factory=Transform)


@dataclass(frozen=True, config=MODEL)
class Shadow:
    timeout_s: Seconds = 5.0
    queue_size: Count = 1000
    # The queue's bound in bytes too: a queued copy keeps its request and the primary's answer,
    # so 1,000 queued copies held about 23 MiB while legacy stalled (docs/benchmarks.md, RSS).
    queue_max_bytes: Count = 8_388_608
    max_inflight: Count = 32
    max_body_bytes: Count = 1_048_576
    compare_offload_bytes: NonNegativeInt = 65_536  # 0: every differing body is compared in a thread
    mirror_writes: Flag = False
    record: Annotated[NonEmptyText | None, Env("AGNO_GATEWAY_RECORD")] = None
    record_max_bytes: Count = 100_000_000


@dataclass(frozen=True, config=MODEL)
class Group:
    """A set of route templates that move through the stages together."""

    name: NonEmptyText
    routes: Annotated[tuple[RouteLabel, ...], AfterValidator(_non_empty)]
    stage: Annotated[Stage, Env("AGNO_GATEWAY_STAGE")] = "shadow"
    sample_rate: Annotated[Rate, Env("AGNO_GATEWAY_SAMPLE_RATE")] = 1.0
    sticky: StickyKey | None = None
    # At stage `shadow`, when legacy (the primary) is down, answer from native instead of 502/504
    # (shadow_proxy/proxying.py says when exactly); off by default.
    fallback_to_native: Flag = False


@dataclass(frozen=True, config=MODEL)
class Store:
    dsn: Annotated[Url, Env("AGNO_GATEWAY_STORE_DSN")] = (
        None  # None: the native service's database (the embedded one if none)
    )
    max_samples: Count = 10_000
    max_age_s: Seconds = 7 * 24 * 3600.0
    redact_paths: tuple[NonEmptyText, ...] = ()
    redact_headers: tuple[NonEmptyText, ...] = ("authorization", "cookie", "set-cookie", "x-api-key")


@dataclass(frozen=True, config=MODEL)
class Gate:
    """The parity gate's policy (see shadow_proxy/gate.py: rates are judged by Wilson bounds)."""

    enabled: Flag = True
    # The window judged: the last `window` comparisons (and, apart, native calls) of all replicas,
    # and none older than `window_s`, since the group's stage last changed. With a store the
    # counts are kept per `bucket_s` bucket, whole buckets (so up to one bucket more than `window`),
    # and each replica adds its own every `flush_s`.
    window: Count = 2000
    window_s: Seconds = 24 * 3600.0
    bucket_s: Seconds = 10.0
    flush_s: Seconds = 2.0
    min_samples: Count = 500
    promote_max_mismatch_rate: Rate = 0.01
    allow_native: Flag = False
    min_rollback_samples: Count = 50
    rollback_mismatch_rate: Rate = 0.02
    rollback_error_rate: Rate = 0.05
    z: PositiveFloat = 1.96
    interval_s: Seconds = 5.0


@dataclass(frozen=True, config=MODEL)
class Rollout:
    poll_s: Seconds = 2.0


@dataclass(frozen=True, config=MODEL)
class Admin:
    token: Annotated[Text | None, Env("AGNO_GATEWAY_ADMIN_TOKEN")] = None
    protect_reads: Flag = False  # also require the token for GET /shadow/* (report, samples, stages)
    # A port of their own for /metrics and /shadow/* (None: they are on listen.port). When set,
    # listen.port answers those paths 404 and only this port serves them (with /healthz, /readyz).
    port: Port | None = None
    host: NonEmptyText | None = None  # the admin port's address (None: listen.host)


@dataclass(frozen=True, config=MODEL)
class GatewayConfig:
    listen: Listen = field(default_factory=Listen)
    legacy: Legacy = field(default_factory=Legacy)
    native: Native = field(default_factory=Native)
    shadow: Shadow = field(default_factory=Shadow)
    groups: tuple[Group, ...] = (Group("reads", READ_ROUTES), Group("writes", WRITE_ROUTES))
    rules: NonEmptyText | None = None
    noise_model: NonEmptyText | None = None
    store: Store = field(default_factory=Store)
    gate: Gate = field(default_factory=Gate)
    rollout: Rollout = field(default_factory=Rollout)
    admin: Admin = field(default_factory=Admin)

    @field_validator("groups")
    @classmethod
    def _one_group_per_route(cls, groups: tuple[Group, ...]) -> tuple[Group, ...]:
        """At least one group; a route in two groups would have two stages; a name twice, two
        meanings. (Checked here, after the groups themselves are valid.)"""
        if not groups:
            raise ValueError("name at least one group")
        owner: dict[str, str] = {}
        for group in groups:
            for route in group.routes:
                if route in owner:
                    raise ValueError(f"route {route!r} is in two groups ({owner[route]}, {group.name})")
                owner[route] = group.name
        names = [g.name for g in groups]
        if len(set(names)) != len(names):
            raise ValueError(f"group names must be unique, got {names}")
        return groups

    def group_of(self, route: str) -> Group | None:
        for group in self.groups:
            if route in group.routes:
                return group
        return None

    def group(self, name: str) -> Group | None:
        return next((g for g in self.groups if g.name == name), None)

    @property
    def redacted_headers(self) -> tuple[str, ...]:
        """`store.redact_headers` and every header a side's transform sets (its value may be a
        secret from the environment): what the samples, the recording and the logs never show."""
        names = [*self.store.redact_headers, *self.legacy.transform.set, *self.native.transform.set]
        return tuple(dict.fromkeys(n.lower() for n in names))

    def load_rules(self) -> Rules:
        """The comparator rules the gateway judges with: `rules`, else the shipped
        comparator.yaml (with its known differences: without them, agno's registered 500s would
        count as mismatches and hold a route back), labelling requests with the sessions route
        table, the labels its groups use (so comparisons, noise model and known differences
        agree with the gateway's routes). Raises RulesError."""
        return Rules.load(self.rules or default_file("comparator.yaml"), label=route_label)


_FILE = TypeAdapter(GatewayConfig)


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> GatewayConfig:
    """The YAML file (relative paths in it are relative to the file), then the environment.
    A key left empty (`listen:` with nothing under it) has its defaults."""
    env = os.environ if env is None else env
    data: Any = {}
    base = Path(".")
    if path is not None:
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise GatewayConfigError(f"{path}: {exc}") from exc
        if not isinstance(data, Mapping):
            raise GatewayConfigError(f"{path}: the top level must be a mapping")
        base = Path(path).resolve().parent
    data = {key: value for key, value in data.items() if value is not None or key in ("rules", "noise_model")}
    group_names: list[str] = []
    if "groups" in data:
        # The file names groups by key; the config holds them as a tuple, in the file's order.
        if not isinstance(data["groups"], Mapping):
            raise GatewayConfigError(
                f"{path}: groups: should be a mapping of group name -> {{routes, stage, sample_rate, sticky, fallback_to_native}}"
            )
        group_names = [str(name) for name in data["groups"]]
        entries = []
        for name, entry in data["groups"].items():
            if isinstance(entry, Mapping) and "name" in entry:
                raise GatewayConfigError(f"{path}: groups.{name}: unknown key(s) ['name'] (a group's name is its key)")
            entries.append(
                {**entry, "name": str(name)}
                if isinstance(entry, Mapping)
                else {"name": str(name)}
                if entry is None
                else entry
            )
        data["groups"] = entries
    try:
        config = _FILE.validate_python(data, context={"env": env})
    except ValidationError as exc:
        source = str(path) if path is not None else ""
        raise GatewayConfigError(
            format_errors(exc, source, keys={"groups": group_names}, model=GatewayConfig)
        ) from None
    config = dataclasses.replace(
        config, rules=_relative(config.rules, base), noise_model=_relative(config.noise_model, base)
    )
    try:
        return apply_env(config, env)
    except (ValueError, ValidationError) as exc:
        raise GatewayConfigError(str(exc)) from None


def _relative(value: str | None, base: Path) -> str | None:
    return None if value is None else str(base / value)
