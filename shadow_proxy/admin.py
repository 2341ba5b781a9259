"""Read-only admin views of the gateway: the stored mismatch samples as JSON (for scripts, and
for replaying them after a fix) and the HTML report (for people).

    add_admin_routes(app)   # GET /shadow/mismatches, GET /shadow/report

Both read `app[GATEWAY]`: an object with `store` (a `GatewayStore`, or None when no store is
configured) and `snapshot()` returning {"groups": ..., "routes": ...} as `report.py` describes.
The views do no authentication themselves: `app.py` guards them with the admin token when
`admin.protect_reads` is set (they are open by default; samples are stored redacted).
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiohttp import web

from .appkeys import GATEWAY
from .report import render_report
from .store import GatewayStore

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
REPORT_LIMIT = 20

# What a store that is down raises; the views answer 503 instead of a bare 500.
_STORE_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)


class BadQuery(ValueError):
    """A query parameter that cannot be used; the message names it."""


def add_admin_routes(app: web.Application) -> None:
    """Register the admin views on `app` (which must hold `app[GATEWAY]` before serving)."""
    app.router.add_get("/shadow/mismatches", mismatches_view)
    app.router.add_get("/shadow/report", report_view)


def _detail(status: int, detail: str) -> web.Response:
    return web.json_response({"detail": detail}, status=status)


# ---- query parsing -----------------------------------------------------------------------------


def parse_time(name: str, value: str) -> float:
    """Epoch seconds, or ISO 8601 (`2024-05-01T12:00:00Z`; no offset means UTC)."""
    try:
        epoch = float(value)
    except ValueError:
        epoch = _iso(name, value)
    try:
        datetime.fromtimestamp(epoch, UTC)  # the store needs a real timestamp: no nan, inf or year 10000
    except (ValueError, OverflowError, OSError):
        raise BadQuery(f"{name} is out of range: {value!r}") from None
    return epoch


def _iso(name: str, value: str) -> float:
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise BadQuery(f"{name} must be epoch seconds or an ISO 8601 time, got {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def parse_limit(value: str | None) -> int:
    if value is None or value == "":
        return DEFAULT_LIMIT
    try:
        limit = int(value)
    except ValueError:
        raise BadQuery(f"limit must be an integer from 1 to {MAX_LIMIT}, got {value!r}") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise BadQuery(f"limit must be from 1 to {MAX_LIMIT}, got {limit}")
    return limit


def mismatch_filters(query: Mapping[str, str]) -> dict[str, Any]:
    """The keyword arguments of `GatewayStore.mismatches` from the query string."""
    times = {name: parse_time(name, query[name]) for name in ("since", "until") if query.get(name)}
    if "since" in times and "until" in times and times["since"] > times["until"]:
        raise BadQuery("since is after until")
    return {
        "route": query.get("route") or None,
        "path": query.get("path") or None,
        "since": times.get("since"),
        "until": times.get("until"),
        "limit": parse_limit(query.get("limit")),
    }


# ---- views -------------------------------------------------------------------------------------


async def mismatches_view(request: web.Request) -> web.Response:
    """GET /shadow/mismatches?route=&path=&since=&until=&limit= : newest first."""
    try:
        filters = mismatch_filters(request.query)
    except BadQuery as exc:
        return _detail(400, str(exc))
    store: GatewayStore | None = request.app[GATEWAY].store
    if store is None:
        return _detail(503, "no mismatch store configured")
    try:
        samples = await store.mismatches(**filters)
    except _STORE_ERRORS as exc:
        return _detail(503, f"mismatch store unavailable: {exc}")
    return web.json_response(
        {"mismatches": samples, "count": len(samples)},
        dumps=lambda data: json.dumps(data, ensure_ascii=False, default=str),
    )


async def _snapshot(gateway: Any) -> dict[str, Any]:
    """`gateway.snapshot()`, awaited if the gateway made it a coroutine."""
    snapshot = gateway.snapshot()
    if inspect.isawaitable(snapshot):
        snapshot = await snapshot
    return dict(snapshot)


async def _store_data(store: GatewayStore | None) -> tuple[dict[str, Any], str | None]:
    """What the report shows from the store, and a note when there is none to show."""
    if store is None:
        return {}, "No mismatch store is configured: samples, top paths and stage history are not kept."
    try:
        return {
            "top_paths": await store.top_paths(REPORT_LIMIT),
            "samples": await store.mismatches(limit=REPORT_LIMIT),
            "decisions": [d.to_dict() for d in await store.decisions(limit=REPORT_LIMIT)],
        }, None
    except _STORE_ERRORS as exc:
        return {}, f"The mismatch store is unavailable ({exc}); only this replica's own numbers are shown."


async def report_view(request: web.Request) -> web.Response:
    """GET /shadow/report : the HTML page of `report.render_report`."""
    gateway = request.app[GATEWAY]
    snapshot = await _snapshot(gateway)
    stored, note = await _store_data(gateway.store)
    data = {
        "generated_at": time.time(),
        "groups": snapshot.get("groups") or {},
        "routes": snapshot.get("routes") or {},
        **stored,
    }
    if note:
        data["note"] = note
    return web.Response(text=render_report(data), content_type="text/html", charset="utf-8")
