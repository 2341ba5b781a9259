"""Database ids learned from the legacy AgentOS, not guessed.

agno's clients (its Agent UI first) send `db_id` on every sessions request, taken from the
AgentOS's own answers (`/agents`, `/config`). A native service given one DSN does not know that
id (it would answer `404 No database found with id 'main-db'`), so with a legacy side the gateway
reads `GET /config` (agno 3.1.10: `session.dbs[].db_id` with its `tables`, else the top-level
`databases` list) at start and every `INTERVAL_S`, and maps each id to a native database:

1. an id native already serves (its `AGNO_DEFAULT_DB_ID`, a key of `AGNO_SESSION_DSN_MAP`, or an
   alias registered before) maps to that database;
2. else, when native has exactly one database (one DSN) and legacy exactly one id native does
   not know, that id becomes an alias of the one database (`Settings.db_aliases`), registered
   live on the in-process native service (`session_service.app.register_db_aliases`);
3. any other id is *unmapped*: logged once with the setting that fixes it
   (`AGNO_SESSION_DSN_MAP` with that id as a key), shown in `/readyz` under `db_ids`, and
   counted in `shadow_unmapped_db_ids`.

An unmapped id does not make the gateway unready: its requests are answered by legacy (native's
`No database found` is a "cannot serve" answer, shadow_proxy/proxying.py falls back), so taking
the replica out of rotation would turn a configuration gap into an outage. With native over
HTTP (`native.url`) the gateway cannot configure it; it asks native instead (a one-row list with
that `db_id`) and reports the ids native cannot serve.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from aiohttp import web

from agentos_session.sessions_api import cannot_serve
from comparator import Request
from session_service.config import ConfigError, Settings, with_db_aliases

from .metrics import GatewayMetrics
from .sides import Side

log = logging.getLogger("shadow_proxy")

INTERVAL_S = 60.0
RETRY_S = 5.0
FIX = "add it to AGNO_SESSION_DSN_MAP (a JSON object of db id -> DSN) for the native service"


@dataclass(frozen=True)
class DbIds:
    """One reading: legacy's ids, each mapped to a native db id or unmapped with the reason."""

    legacy: tuple[str, ...] = ()
    mapped: dict[str, str] = field(default_factory=dict)  # legacy id -> native db id
    unmapped: dict[str, str] = field(default_factory=dict)  # legacy id -> why, and the fix
    error: str | None = None  # why /config could not be read (the last good mapping stays)

    def body(self) -> dict[str, Any]:
        """The `/readyz` details."""
        body: dict[str, Any] = {"legacy": list(self.legacy), "mapped": self.mapped, "unmapped": self.unmapped}
        if self.error:
            body["error"] = self.error
        return body


def parse_config(body: bytes) -> tuple[str, ...]:
    """The session database ids in an AgentOS `GET /config` answer, in its order. ValueError
    when the answer is not agno's config."""
    config = json.loads(body)
    if not isinstance(config, dict):
        raise ValueError("GET /config did not answer a JSON object")
    session = config.get("session")
    dbs = session.get("dbs") if isinstance(session, dict) else None
    ids: list[Any]
    if isinstance(dbs, list) and dbs:
        ids = [db.get("db_id") for db in dbs if isinstance(db, dict)]
    elif isinstance(config.get("databases"), list):
        ids = config["databases"]
    else:
        raise ValueError("GET /config lists no databases (neither session.dbs nor databases)")
    return tuple(dict.fromkeys(i for i in ids if isinstance(i, str) and i))


def map_ids(legacy: tuple[str, ...], settings: Settings) -> tuple[DbIds, Settings]:
    """Map legacy's ids onto the native `settings` (rules 1-3 of the module docstring); the
    settings come back with the new aliases."""
    mapped: dict[str, str] = {}
    unknown = []
    for db_id in legacy:
        db = settings.database_for(db_id)
        if db is not None:
            mapped[db_id] = db.db_id
        else:
            unknown.append(db_id)
    unmapped: dict[str, str] = {}
    if len(settings.databases) == 1 and len(unknown) == 1 and settings.databases[0].db_id not in legacy:
        target = settings.databases[0].db_id
        try:
            settings = with_db_aliases(settings, {unknown[0]: target})
            mapped[unknown[0]] = target
        except ConfigError as exc:  # only a conflicting earlier alias; reported, not guessed
            unmapped[unknown[0]] = f"{exc}; {FIX}"
    else:
        configured = sorted(db.db_id for db in settings.databases)
        for db_id in unknown:
            unmapped[db_id] = f"native has no database with this id (it has {configured}); {FIX}"
    return DbIds(legacy, mapped, unmapped), settings


class DbIdLearner:
    """Reads legacy's ids, maps them, registers aliases on the in-process native app, and
    reports (log on change, `shadow_unmapped_db_ids`, `current` for /readyz)."""

    def __init__(
        self,
        legacy: Side,
        native: Side,
        metrics: GatewayMetrics,
        *,
        native_app: web.Application | None,
        settings: Settings | None,
        timeout_s: float,
    ) -> None:
        self.legacy = legacy
        self.native = native
        self.metrics = metrics
        self.native_app = native_app
        self.settings = settings
        self.timeout_s = timeout_s
        self.current = DbIds()

    async def learn(self) -> DbIds:
        """One reading; on a failed read the last mapping stays and `error` says why."""
        try:
            legacy_ids = await self._read_legacy()
        except ValueError as exc:
            self.current = DbIds(self.current.legacy, self.current.mapped, self.current.unmapped, str(exc))
            return self.current
        if self.settings is not None:
            reading, settings = map_ids(legacy_ids, self.settings)
            new = {a: t for a, t in settings.db_aliases.items() if a not in self.settings.db_aliases}
            if new and self.native_app is not None:
                from session_service.app import register_db_aliases

                register_db_aliases(self.native_app, new)
                for alias, target in new.items():
                    log.info("db id %r of the legacy AgentOS is served by native database %r", alias, target)
            self.settings = settings
        else:
            reading = await self._ask_native(legacy_ids)
        for db_id, reason in reading.unmapped.items():
            if db_id not in self.current.unmapped:
                log.warning("db id %r of the legacy AgentOS cannot be served natively: %s", db_id, reason)
        self.metrics.unmapped_db_ids.set(len(reading.unmapped))
        self.current = reading
        return reading

    async def _read_legacy(self) -> tuple[str, ...]:
        answer = await self.legacy.send(Request("GET", "/config", {"Accept": "application/json"}, b""), self.timeout_s)
        r = answer.response
        if r.error is not None:
            raise ValueError(f"GET /config did not answer ({'timeout' if answer.timed_out else r.error})")
        if r.status != 200:
            raise ValueError(f"GET /config answered {r.status}")
        return parse_config(r.body)

    async def _ask_native(self, legacy_ids: tuple[str, ...]) -> DbIds:
        """Native over HTTP: ask it for one session of each id; a "cannot serve" answer means unmapped."""
        mapped: dict[str, str] = {}
        unmapped: dict[str, str] = {}
        for db_id in legacy_ids:
            path = f"/sessions?limit=1&db_id={quote(db_id, safe='')}"
            answer = await self.native.send(Request("GET", path, {"Accept": "application/json"}, b""), self.timeout_s)
            r = answer.response
            refusal = None if r.error else cannot_serve(r.status, r.body)
            if r.error is None and refusal is None:
                mapped[db_id] = db_id
            else:
                why = refusal.why if refusal else f"native did not answer ({r.error})"
                unmapped[db_id] = f"{why}; {FIX}"
        return DbIds(legacy_ids, mapped, unmapped)

    async def watch(self, interval_s: float = INTERVAL_S) -> None:
        """Read again every `interval_s` (every `RETRY_S` at most while legacy's /config could
        not be read, e.g. legacy was away at start): an AgentOS that gains a database is followed."""
        while True:
            await asyncio.sleep(min(interval_s, RETRY_S) if self.current.error else interval_s)
            try:
                await self.learn()
            except Exception:  # a bug here must not end the loop; the next round tries again
                log.exception("reading the legacy AgentOS's db ids failed; retrying in %.0f s", interval_s)
