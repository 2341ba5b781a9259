"""The core's operational stages (session_service/core.py calls them in this order): request
ids, one access log line per request, real client IP, crash recovery, a request timeout, the
body limit and AgentOS's security-key auth. Plain functions of a `CoreRequest`: the aiohttp app
and the gateway's in-process side run the same ones.

Order (outermost first): `observe` wraps everything so that even an auth failure or a crash is
logged, counted and carries a request id; `authenticate` runs before any route, as AgentOS's
`AuthMiddleware` does (so an unknown path without a key is a 401, not a 404).

The access line is a record of `session_service.access` whose `fields` (method, route template,
status, duration_ms, request_id, client_ip) agentos_session.logs writes as one JSON object with
`ts` and `level`. Header values and bodies are never logged.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import ipaddress
import itertools
import logging
import re
import secrets
from typing import TYPE_CHECKING

from aiohttp import web

from . import auth_jwt
from .appkeys import DATABASES, METRICS, SETTINGS
from .config import IPNetwork
from .errors import RETRY_AFTER_S, database_unavailable, unavailable_detail
from .routes import Match, match
from .validation import starlette_path
from .views import error_response

if TYPE_CHECKING:
    from .core import CoreRequest, Handler

access_log = logging.getLogger("session_service.access")
error_log = logging.getLogger("session_service.error")

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_OK = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
# Routes that answer without a key: they are the operator's, not AgentOS's.
# `/openapi.json` is open in AgentOS too (its AuthMiddleware and JWT middleware exclude it).
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json"})
# The level of the access lines (logging.INFO unless the app says otherwise: the gateway runs
# this app in-process with DEBUG, as its own access line covers the client's request).
ACCESS_LOG_LEVEL = web.AppKey("access_log_level", int)


def request_id_of(header: str | None) -> str:
    """Keep a caller's id if it is a sane token (it ends up in logs), else make one: 32 hex
    digits, a random per-process prefix and a counter (unique, and without uuid4's cost on every
    request)."""
    if header and _REQUEST_ID_OK.match(header):
        return header
    return f"{_ID_PREFIX}{next(_ID_COUNTER) & _ID_MASK:016x}"


_ID_PREFIX = secrets.token_hex(8)
_ID_COUNTER = itertools.count(secrets.randbits(63))
_ID_MASK = 2**64 - 1


def peer_of(request: CoreRequest) -> str | None:
    """The connection's peer address; for the gateway's in-process side (`from_gateway`), the
    address the gateway saw, its last X-Forwarded-For hop."""
    if request.from_gateway:
        hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
        return hops[-1] if hops else None
    return request.peer


def client_ip(
    peer: str | None, forwarded_for: str | None, real_ip: str | None, trusted: tuple[IPNetwork, ...]
) -> str | None:
    """The client's address. Forwarding headers are believed only from a trusted proxy, and in
    `X-Forwarded-For` only up to the first hop that is not itself a trusted proxy."""

    def is_trusted(addr: str | None) -> bool:
        if not addr:
            return False
        try:
            ip = ipaddress.ip_address(addr.strip())
        except ValueError:
            return False
        return any(ip in net for net in trusted)

    if not trusted or not is_trusted(peer):
        return peer
    if forwarded_for:
        hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
        for hop in reversed(hops):
            if not is_trusted(hop):
                return hop
        if hops:
            return hops[0]
    if real_ip and real_ip.strip():
        return real_ip.strip()
    return peer


async def observe(request: CoreRequest, handler: Handler) -> web.Response:
    """The outermost stage: every answer, even a refusal or a crash, gets a request id, a count,
    a latency and (when its level is on) an access line."""
    app = request.app
    settings = app[SETTINGS]
    rid = request_id_of(request.headers.get(REQUEST_ID_HEADER))
    # Matched once, here, so that even a 401 is labelled by its route template (never the concrete
    # path); `dispatch` serves the same match.
    found: Match | None
    if request.path in OPEN_PATHS:
        route, found = request.path, None
    else:
        found = match(request.method, starlette_path(request.raw_path))
        route = found.template
    # The deadline counts from the request's arrival: time spent reading its body counts too.
    deadline = asyncio.timeout_at(request.arrived + settings.request_timeout_s)
    response: web.Response
    try:
        if request.body_refused == "too_large" or len(request.body) > settings.max_body_bytes:
            response = error_response(413, f"Request body too large (limit {settings.max_body_bytes} bytes)")
        elif request.body_refused == "timeout":
            response = error_response(504, f"Request timed out after {settings.request_timeout_s:g} s")
        else:
            async with deadline:
                response = await handler(request, found)
    except TimeoutError as exc:
        if deadline.expired():
            response = error_response(504, f"Request timed out after {settings.request_timeout_s:g} s")
        else:  # the database's own timeouts (connect, command): it is away, not a bug
            response = _unavailable(request, route, exc, rid)
    except web.HTTPException as exc:  # aiohttp's own (should not happen: routing is ours)
        response = error_response(exc.status, exc.reason)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        if database_unavailable(exc, (h.pool for h in app[DATABASES].values())):
            response = _unavailable(request, route, exc, rid)
        else:
            # Crash recovery: the client gets agno's generic 500, the log gets the traceback.
            error_log.exception("unhandled error", extra={"request_id": rid})
            response = error_response(500, f"Internal server error ({type(exc).__name__})")
    response.headers[REQUEST_ID_HEADER] = rid
    elapsed = asyncio.get_running_loop().time() - request.arrived
    app[METRICS].observe_request(request.method, route, response.status, elapsed)
    level = app.get(ACCESS_LOG_LEVEL, logging.INFO)
    if access_log.isEnabledFor(level):  # the record and the client address only when written
        access_log.log(
            level,
            "request",
            extra={
                "fields": {
                    "method": request.method,
                    "route": route,
                    "status": response.status,
                    "duration_ms": round(elapsed * 1000, 3),
                    "request_id": rid,
                    "client_ip": client_ip(
                        peer_of(request),
                        request.headers.get("X-Forwarded-For"),
                        request.headers.get("X-Real-IP"),
                        settings.trusted_proxies,
                    ),
                }
            },
        )
    return response


def _unavailable(request: CoreRequest, route: str, exc: BaseException, rid: str) -> web.Response:
    """503 with Retry-After for a database that is away (session_service/errors.py decides
    which failures those are). One warning line, no traceback: it is an outage, not a bug."""
    error_log.warning(
        "database unavailable (%s) on %s %s",
        type(exc).__name__,
        request.method,
        route,
        extra={"request_id": rid},
    )
    return error_response(503, unavailable_detail(exc), headers={"Retry-After": str(RETRY_AFTER_S)})


def bearer_token(header: str) -> str:
    """AgentOS accepts `Bearer <key>` (any case) and a bare `<key>`."""
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return header.strip()


async def authenticate(request: CoreRequest, found: Match | None, handler: Handler) -> web.Response:
    """agno's AuthMiddleware: JWT mode when configured (it wins over the key, as in agno),
    else the security key compared in constant time, else open."""
    settings = request.app[SETTINGS]
    key, jwt_config = settings.security_key, settings.jwt
    if (not key and jwt_config is None) or request.method == "OPTIONS" or request.path in OPEN_PATHS:
        return await handler(request, found)
    token = bearer_token(request.headers.get("Authorization", ""))
    if jwt_config is not None:
        refusal, identity = auth_jwt.authorize(jwt_config, token, request.method, request.path)
        if refusal is not None or identity is None:
            status, detail = refusal or (401, "Invalid token")
            return _refused(request, detail, status)
        # Who the token says the caller is (agno's request.state.user_id, user isolation): the
        # views read it from the value, which is frozen, so the handler gets a copy carrying it.
        return await handler(dataclasses.replace(request, identity=identity), found)
    assert key is not None
    if not token:
        return _refused(request, "Authorization header required")
    if not hmac.compare_digest(token.encode(), key.encode()):
        return _refused(request, "Invalid authentication token")
    return await handler(request, found)


def _refused(request: CoreRequest, detail: str, status: int = 401) -> web.Response:
    """agno's auth middleware writes CORS headers into its own 401/403 for an allowed origin,
    wildcard methods and headers included; the CORS middleware around it adds the rest."""
    response = error_response(status, detail)
    origin = request.headers.get("Origin")
    if origin and request.app[SETTINGS].cors.allows(origin):
        response.headers["Access-Control-Allow-Methods"] = "*"
        response.headers["Access-Control-Allow-Headers"] = "*"
    return response
