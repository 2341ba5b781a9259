"""Configuration, read once at the edge (the CLI or `create_app`) and never again.

The environment variables are the ones an agno deployment already has, so the native service
can be pointed at the same database as the AgentOS it replaces:

| Variable | Meaning | Default |
|---|---|---|
| `AGNO_PG_DSN`, else `DATABASE_URL` | the single database | embedded Postgres |
| `AGNO_SESSION_DSN_MAP` | JSON `{"db_id": "dsn", ...}` for several databases | |
| `AGNO_DEFAULT_DB_ID` | db id of the single DSN; with a map, the db for requests without `db_id` | agno's id; none (400, as agno) |
| `AGNO_SERVICE_PORT` | listening port | 8080 |
| `AGNO_DB_SCHEMA`, `AGNO_SESSION_TABLE`, `AGNO_RUNS_TABLE` | agno's table options | `ai`, `agno_sessions`, `agno_runs` |
| `OS_SECURITY_KEY` | bearer key, as AgentOS | open |
| `JWT_VERIFICATION_KEY`, `JWT_JWKS_FILE`, `AGNO_JWT_ALGORITHM` | agno's JWT mode with its sessions scopes (auth_jwt.py) | off; RS256 |
| `AGNO_JWT_AUDIENCE`, `AGNO_JWT_ISSUER`, `AGNO_USER_ISOLATION` | in JWT mode: agno's expected audience (comma-separated), pinned issuer, per-user isolation (auth_jwt.py) | off |
| `AGNO_CORS_ORIGINS`, `CORS_ORIGIN_LIST`, `AGNO_CORS_ORIGIN_REGEX` | browser origins allowed by CORS, as AgentOS | agno's domains |
| `AGNO_REQUEST_TIMEOUT_S` | a request's deadline (504 after it; the database timeouts are half of it) | 60 |
| `AGNO_IDLE_TIMEOUT_S` | time to send a complete request head, and keep-alive idle time | 15 |
| `AGNO_MAX_CONNECTIONS` | open connections; past it a new one gets 503 and is closed | 1000 |
| `AGNO_EMBEDDED_PG_DIR` | data directory of the embedded Postgres (used when no DSN is set) | `~/.local/share/agentos-session/pgdata` |

To find the ids your AgentOS uses, ask it: `curl -s http://<agentos>:7777/config | jq '.session.dbs[].db_id'`
(also `.databases`); set that id as `AGNO_DEFAULT_DB_ID` (one DSN) or as the keys of
`AGNO_SESSION_DSN_MAP`. The gateway does this itself: it registers the ids it reads from its
legacy AgentOS as `Settings.db_aliases` of the native databases (shadow_proxy/dbids.py).

`settings_from_env()` is the one way every entry point (`serve`, `create_app()` under
`python -m aiohttp.web`, the gateway's in-process native service) turns the environment into
`Settings`, so they cannot disagree about where the embedded Postgres lives.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import logging
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .auth_jwt import JwtConfig, JwtConfigError, jwt_config_from_env
from .cors import CorsPolicy, policy_from_env

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

log = logging.getLogger("session_service")


class ConfigError(ValueError):
    """The environment does not describe a usable configuration."""


@dataclass(frozen=True)
class Tables:
    """agno's table names for one database (`PostgresDb(db_schema=, session_table=, runs_table=)`)."""

    schema: str = "ai"
    sessions: str = "agno_sessions"
    runs: str = "agno_runs"

    @classmethod
    def from_names(cls, schema: str | None, sessions: str | None, runs: str | None) -> Tables:
        sessions_name = sessions or "agno_sessions"
        # agno: a custom session table moves the runs table default to `<session_table>_runs`.
        runs_name = runs or (f"{sessions}_runs" if sessions else "agno_runs")
        return cls(schema=schema or "ai", sessions=sessions_name, runs=runs_name)


@dataclass(frozen=True)
class Database:
    """One routable database: the `db_id` clients name and where it lives."""

    db_id: str
    dsn: str
    tables: Tables = field(default_factory=Tables)


@dataclass(frozen=True)
class Settings:
    databases: tuple[Database, ...]
    default_db_id: str
    # The db that answers requests without `db_id`. agno answers those with 400 when it has
    # several databases, so with a DSN map this is None unless AGNO_DEFAULT_DB_ID is set.
    route_default_db_id: str | None = None
    host: str = "0.0.0.0"
    port: int = 8080
    security_key: str | None = None
    # agno's JWT mode (auth_jwt.py): set by JWT_VERIFICATION_KEY / JWT_JWKS_FILE; wins over the key.
    jwt: JwtConfig | None = None
    pool_min_size: int = 2
    pool_max_size: int = 10
    request_timeout_s: float = 60.0
    max_body_bytes: int = 1024 * 1024
    trusted_proxies: tuple[IPNetwork, ...] = ()
    cors: CorsPolicy = field(default_factory=CorsPolicy)
    # How often the background readiness check refreshes `agno_session_db_up` (each /readyz
    # call refreshes it too). Not an environment variable: the default suits a scrape every 15 s.
    readiness_interval_s: float = 5.0
    # Slow and idle clients (session_service/serving.py): the time a connection has to send a
    # complete request head (and may stay idle between requests), and the connection ceiling.
    idle_timeout_s: float = 15.0
    max_connections: int = 1000
    # How long SIGTERM waits for requests in flight before they are cancelled.
    shutdown_timeout_s: float = 10.0
    # Other ids under which a configured database answers: `{alias: db_id}`. Not an environment
    # variable: the gateway learns its legacy AgentOS's ids (`GET /config`) and registers them
    # here (`with_db_aliases`), so that `db_id=main-db` reaches the one DSN it was given.
    db_aliases: Mapping[str, str] = field(default_factory=dict)

    @property
    def database_timeout_s(self) -> float:
        """asyncpg's connect timeout and `command_timeout`: half the request timeout, so that a
        database that stalls instead of refusing is a 503 from the pool well before the request
        deadline's 504 (a request makes one or two round trips)."""
        return max(0.1, self.request_timeout_s / 2)

    def database_for(self, db_id: str) -> Database | None:
        """The configured database answering `db_id`, by its own id or an alias."""
        target = self.db_aliases.get(db_id, db_id)
        return next((db for db in self.databases if db.db_id == target), None)


def with_db_aliases(settings: Settings, aliases: Mapping[str, str]) -> Settings:
    """`settings` with more `{alias: db_id}` entries. An alias naming a configured database's
    own id is dropped (it already answers); one pointing at no configured database, or at
    another alias, is a ConfigError: an alias must never silently route nowhere."""
    ids = {db.db_id for db in settings.databases}
    merged = dict(settings.db_aliases)
    for alias, target in aliases.items():
        if alias in ids:
            continue
        if target not in ids:
            raise ConfigError(f"db alias {alias!r} names {target!r}, which is not a configured database")
        if merged.get(alias, target) != target:
            raise ConfigError(f"db alias {alias!r} already names {merged[alias]!r}, not {target!r}")
        merged[alias] = target
    return dataclasses.replace(settings, db_aliases=merged)


def agno_default_db_id(dsn: str, schema: str) -> str:
    """The id agno gives a `PostgresDb` without an explicit id: uuid5 of `<db_url>#<schema>`.

    agno hashes its SQLAlchemy URL (`postgresql+psycopg://...`); ours is a libpq DSN, so this id
    only matches when the deployment configured the same spelling. Set `AGNO_DEFAULT_DB_ID` to
    the id your AgentOS uses if clients send `db_id`.
    """
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{dsn}#{schema}"))


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    value = _int(env, name, default)
    if value < 1:
        raise ConfigError(f"{name} must be at least 1, got {value}")
    return value


def _trusted(raw: str) -> tuple[IPNetwork, ...]:
    nets = []
    for part in raw.split(","):
        part = part.strip()
        if part:
            try:
                nets.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                raise ConfigError(f"AGNO_TRUSTED_PROXIES: {part!r} is not an IP address or network") from None
    return tuple(nets)


def load_settings(env: Mapping[str, str] | None = None, *, embedded_dsn: str | None = None) -> Settings:
    """Build `Settings` from environment variables.

    With no DSN at all the caller starts the embedded Postgres and passes its DSN as
    `embedded_dsn`; without that either, `ConfigError` says what to set.
    """
    env = os.environ if env is None else env
    tables = Tables.from_names(env.get("AGNO_DB_SCHEMA"), env.get("AGNO_SESSION_TABLE"), env.get("AGNO_RUNS_TABLE"))
    dsn_map_raw = env.get("AGNO_SESSION_DSN_MAP")
    single = env.get("AGNO_PG_DSN") or env.get("DATABASE_URL")
    if dsn_map_raw:
        try:
            dsn_map = json.loads(dsn_map_raw)
        except ValueError as exc:
            raise ConfigError(f"AGNO_SESSION_DSN_MAP is not valid JSON: {exc}") from None
        if (
            not isinstance(dsn_map, dict)
            or not dsn_map
            or not all(isinstance(k, str) and isinstance(v, str) and v for k, v in dsn_map.items())
        ):
            raise ConfigError('AGNO_SESSION_DSN_MAP must be a non-empty JSON object {"db_id": "dsn"}')
        databases = tuple(Database(db_id, dsn, tables) for db_id, dsn in dsn_map.items())
        default_db_id = env.get("AGNO_DEFAULT_DB_ID") or databases[0].db_id
        if default_db_id not in dsn_map:
            raise ConfigError(f"AGNO_DEFAULT_DB_ID {default_db_id!r} is not a key of AGNO_SESSION_DSN_MAP")
        route_default = default_db_id if (env.get("AGNO_DEFAULT_DB_ID") or len(databases) == 1) else None
    else:
        dsn = single or embedded_dsn
        if not dsn:
            raise ConfigError("no database: set AGNO_PG_DSN (or DATABASE_URL, or AGNO_SESSION_DSN_MAP)")
        db_id = env.get("AGNO_DEFAULT_DB_ID") or agno_default_db_id(dsn, tables.schema)
        databases = (Database(db_id, dsn, tables),)
        default_db_id = route_default = db_id
    try:
        jwt_config = jwt_config_from_env(env)
    except JwtConfigError as exc:
        raise ConfigError(str(exc)) from None
    pool_min = _int(env, "AGNO_POOL_MIN_SIZE", 2)
    pool_max = _int(env, "AGNO_POOL_MAX_SIZE", 10)
    if pool_min < 0 or pool_max < 1 or pool_min > pool_max:
        raise ConfigError("pool sizes need 0 <= AGNO_POOL_MIN_SIZE <= AGNO_POOL_MAX_SIZE and a max of at least 1")
    return Settings(
        databases=databases,
        default_db_id=default_db_id,
        route_default_db_id=route_default,
        host=env.get("AGNO_SERVICE_HOST", "0.0.0.0"),
        port=_int(env, "AGNO_SERVICE_PORT", 8080),
        security_key=env.get("OS_SECURITY_KEY") or None,
        jwt=jwt_config,
        pool_min_size=pool_min,
        pool_max_size=pool_max,
        request_timeout_s=float(_positive(env, "AGNO_REQUEST_TIMEOUT_S", 60)),
        max_body_bytes=_int(env, "AGNO_MAX_BODY_BYTES", 1024 * 1024),
        trusted_proxies=_trusted(env.get("AGNO_TRUSTED_PROXIES", "")),
        idle_timeout_s=float(_positive(env, "AGNO_IDLE_TIMEOUT_S", 15)),
        max_connections=_positive(env, "AGNO_MAX_CONNECTIONS", 1000),
        cors=policy_from_env(env),
    )


def needs_embedded_postgres(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return not (env.get("AGNO_SESSION_DSN_MAP") or env.get("AGNO_PG_DSN") or env.get("DATABASE_URL"))


def settings_from_env(env: Mapping[str, str] | None = None) -> Settings:
    """Settings from this environment, starting the embedded Postgres in `AGNO_EMBEDDED_PG_DIR`
    (else the per-user default directory) when no DSN is set. The one place that decides it,
    and the one log line saying so. ConfigError when the environment is not usable."""
    env = os.environ if env is None else env
    if not needs_embedded_postgres(env):
        return load_settings(env)
    from .embedded_pg import default_data_dir, start_embedded_postgres  # lazily: a DSN never needs it

    data_dir = Path(env.get("AGNO_EMBEDDED_PG_DIR") or default_data_dir())
    dsn = start_embedded_postgres(data_dir)
    log.info("no AGNO_PG_DSN, DATABASE_URL or AGNO_SESSION_DSN_MAP set: using the embedded Postgres in %s", data_dir)
    return load_settings(env, embedded_dsn=dsn)
