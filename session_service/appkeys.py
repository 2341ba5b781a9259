"""Typed keys of the state an app and a request carry (the only mutable state: it lives on them)."""

from __future__ import annotations

from aiohttp import web

from .config import Settings
from .metrics import ServiceMetrics
from .routes import Match

SETTINGS = web.AppKey("settings", Settings)
DATABASES = web.AppKey("databases", dict)  # db_id -> DatabaseHandle
METRICS = web.AppKey("metrics", ServiceMetrics)

# Per-request state.
REQUEST_ID = web.RequestKey("request_id", str)
ROUTE_MATCH = web.RequestKey("route_match", Match)
