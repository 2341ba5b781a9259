"""Typed keys for what the gateway keeps on its aiohttp app."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from .config import GatewayConfig

if TYPE_CHECKING:
    from .gateway import Gateway

CONFIG = web.AppKey("gateway_config", GatewayConfig)
GATEWAY: web.AppKey[Gateway] = web.AppKey("gateway")
