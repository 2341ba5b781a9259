"""Typed keys of the state an app carries (the only mutable state: it lives on the app)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from .config import Settings
from .metrics import ServiceMetrics

if TYPE_CHECKING:
    from .views import DatabaseHandle

SETTINGS = web.AppKey("settings", Settings)
DATABASES = web.AppKey("databases", dict)  # db_id -> DatabaseHandle
METRICS = web.AppKey("metrics", ServiceMetrics)
