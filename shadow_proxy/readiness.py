"""The gateway's readiness (`GET /readyz`) and the `shadow_ready{dependency}` gauge.

`/healthz` is liveness: it answers 200 while the process serves and touches no network.
`/readyz` asks each dependency at once, each within `READY_TIMEOUT_S`:

* `store`: the gateway's database answers `SELECT 1`;
* `native`: in-process, every database of the native service answers (the service's own
  check, `session_service.health.check_databases`); over HTTP (`native.url`), its `/readyz`
  answers 200;
* `legacy` (only when `legacy.url` is configured): agno AgentOS's `GET /health` answers 200.

Legacy is *required* only while some group is at stage `legacy` or `shadow`, where legacy
answers the clients (at `shadow` not for a group with `fallback_to_native`, whose clients native
answers while legacy is away). At `primary` and `native` native answers and legacy only receives
mirrored copies (and the fallbacks), so a legacy that is away is reported in the body
(`checks.legacy`) and in `shadow_ready{dependency="legacy"}` (0) but does not make the gateway
unready: taking every replica out of rotation would turn a degraded mirror into an outage.
Requests outside every group (`/agents`, `/docs`) are legacy's at every stage and fail while
it is away; the alert on `shadow_ready{dependency="legacy"} == 0` is the signal for that.

With a legacy side, `db_ids` shows the database ids learned from its `GET /config` and how each
maps to native (shadow_proxy/dbids.py); an unmapped id is reported there and in
`shadow_unmapped_db_ids` but does not make the gateway unready (its requests fall back to legacy).

Ready: 200 `{"status":"ready","checks":{...},"legacy_required":...}`; not ready: 503
`{"status":"not_ready","not_ready":{"<dependency>":"<reason>"},...}` naming each required
dependency that failed and why.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from comparator import Request
from session_service.health import check_databases, ping

from .sides import InProcessNative, Side
from .transforms import unwrapped

if TYPE_CHECKING:
    from .gateway import Gateway

log = logging.getLogger("shadow_proxy")

READY_TIMEOUT_S = 2.0
READINESS_INTERVAL_S = 5.0
# Stages at which legacy answers the clients of a group.
LEGACY_ANSWERS = frozenset({"legacy", "shadow"})


@dataclass(frozen=True)
class Readiness:
    """One round of checks: each dependency's failure reason (None: ready)."""

    checks: dict[str, str | None]
    legacy_required: bool
    db_ids: dict[str, Any] | None = None  # what shadow_proxy/dbids.py learned; never makes it unready

    @property
    def not_ready(self) -> dict[str, str]:
        """The failed dependencies that make the gateway unready."""
        return {
            dep: reason
            for dep, reason in self.checks.items()
            if reason is not None and (dep != "legacy" or self.legacy_required)
        }

    @property
    def ready(self) -> bool:
        return not self.not_ready

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": "ready" if self.ready else "not_ready"}
        if not self.ready:
            body["not_ready"] = self.not_ready
        body["checks"] = {dep: reason or "ok" for dep, reason in self.checks.items()}
        body["legacy_required"] = self.legacy_required
        if self.db_ids is not None:
            body["db_ids"] = self.db_ids
        return body


def legacy_required(gateway: Gateway) -> bool:
    """True while some group's clients are answered by legacy alone (stage `legacy`, or `shadow`
    without `fallback_to_native`: a group with it is answered by native while legacy is away,
    and a gateway taken out of rotation could not do that)."""
    if gateway.legacy is None:
        return False
    for name, decision in gateway.stages.items():
        group = gateway.config.group(name)
        reverse = decision.to_stage == "shadow" and group is not None and group.fallback_to_native
        if decision.to_stage in LEGACY_ANSWERS and not reverse:
            return True
    return False


async def check(gateway: Gateway) -> Readiness:
    """Ask every dependency at once and set `shadow_ready` for each."""
    probes = {"store": _store(gateway), "native": _native(gateway.native)}
    if gateway.legacy is not None:
        probes["legacy"] = _http(gateway.legacy, "/health")
    reasons = await asyncio.gather(*probes.values())
    checks = dict(zip(probes, reasons, strict=True))
    for dependency, reason in checks.items():
        gateway.metrics.ready.labels(dependency).set(0.0 if reason else 1.0)
    learned = gateway.dbids.current.body() if gateway.dbids is not None else None
    return Readiness(checks, legacy_required(gateway), learned)


async def _store(gateway: Gateway) -> str | None:
    if gateway.store is None:
        return "no store"
    return await ping(gateway.store.pool, READY_TIMEOUT_S)


async def _native(side: Side) -> str | None:
    native = unwrapped(side)
    if isinstance(native, InProcessNative):
        down = await check_databases(native.app)
        return "; ".join(f"{db_id}: {reason}" for db_id, reason in sorted(down.items())) or None
    return await _http(side, "/readyz")


async def _http(side: Side, path: str) -> str | None:
    """None when `GET <path>` answers 200, else why not (with the side's `not_ready`, if any)."""
    answer = await side.send(Request("GET", path, {"Accept": "application/json"}, b""), READY_TIMEOUT_S)
    response = answer.response
    if response.error is not None:
        return f"{path} did not answer ({'timeout' if answer.timed_out else response.error})"
    if response.status == 200:
        return None
    detail = ""
    try:
        not_ready = json.loads(response.body).get("not_ready")
        detail = f": {json.dumps(not_ready, sort_keys=True)}" if not_ready else ""
    except (ValueError, AttributeError):
        pass
    return f"{path} answered {response.status}{detail}"


async def watch(gateway: Gateway, interval_s: float) -> None:
    """The background check: keeps `shadow_ready` current between probes (Prometheus sees an
    outage even when nobody calls /readyz) and logs each change of a dependency's state once."""
    last: dict[str, str | None] = {}
    while True:
        try:
            result = await check(gateway)
        except Exception:  # a bug here must not end the loop; the next round tries again
            log.exception("readiness check failed; retrying in %.1f s", interval_s)
        else:
            for dependency, reason in result.checks.items():
                if reason and not last.get(dependency):
                    log.warning("%s is not ready: %s", dependency, reason)
                elif not reason and last.get(dependency):
                    log.info("%s is ready again", dependency)
            last = dict(result.checks)
        await asyncio.sleep(interval_s)
