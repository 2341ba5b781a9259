"""Typed keys of the state an app carries (the only mutable state: it lives on the app, which is
also the core's state, session_service/core.py)."""

from __future__ import annotations

from aiohttp import web

from .config import Settings
from .metrics import ServiceMetrics

SETTINGS = web.AppKey("settings", Settings)
DATABASES = web.AppKey("databases", dict)  # db_id -> DatabaseHandle
METRICS = web.AppKey("metrics", ServiceMetrics)
