"""Operational middleware: request ids, one access log line per request, real client IP, crash
recovery, a request timeout, the body limit and AgentOS's security-key auth.

Order (outermost first): `observe` wraps everything so that even an auth failure or a crash is
logged, counted and carries a request id; `authenticate` runs before any route, as AgentOS's
`AuthMiddleware` does (so an unknown path without a key is a 401, not a 404).

The access line is a record of `session_service.access` whose `fields` (method, route template,
status, duration_ms, request_id, client_ip) agentos_session.logs writes as one JSON object with
`ts` and `level`. Header values and bodies are never logged.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import re
import socket
import time
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

from . import auth_jwt
from .appkeys import DATABASES, METRICS, REQUEST_ID, ROUTE_MATCH, SETTINGS
from .config import IPNetwork
from .errors import RETRY_AFTER_S, database_unavailable, unavailable_detail
from .routes import match
from .validation import starlette_path
from .views import error_response

access_log = logging.getLogger("session_service.access")
error_log = logging.getLogger("session_service.error")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_OK = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
# Routes that answer without a key: they are the operator's, not AgentOS's.
# `/openapi.json` is open in AgentOS too (its AuthMiddleware and JWT middleware exclude it).
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json"})
# The level of the access lines (logging.INFO unless the app says otherwise: the gateway runs
# this app in-process with DEBUG, as its own access line covers the client's request).
ACCESS_LOG_LEVEL = web.AppKey("access_log_level", int)
# Set by the gateway when it serves this app in-process on its private Unix socket (a 0700
# directory): a peer on a Unix socket is then the gateway, whose last X-Forwarded-For hop is the
# client address it saw. Never set for `agentos-session serve`; TCP peers are unaffected.
TRUST_UNIX_PEER = web.AppKey("trust_unix_peer", bool)


def request_id_of(header: str | None) -> str:
    """Keep a caller's id if it is a sane token (it ends up in logs), else make one."""
    if header and _REQUEST_ID_OK.match(header):
        return header
    return uuid.uuid4().hex


def peer_of(request: web.Request) -> str | None:
    """The connection's peer address; behind the gateway's private Unix socket
    (`TRUST_UNIX_PEER`), the address the gateway saw, its last X-Forwarded-For hop."""
    if request.app.get(TRUST_UNIX_PEER):
        sock = request.get_extra_info("socket")
        if sock is not None and sock.family == socket.AF_UNIX:
            hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
            return hops[-1] if hops else None
    return request.remote


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


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    metrics = request.app[METRICS]
    rid = request_id_of(request.headers.get(REQUEST_ID_HEADER))
    request[REQUEST_ID] = rid
    # Matched once, here, so that even a 401 is labelled by its route template (never the concrete
    # path); `dispatch` serves the same match.
    if request.path in OPEN_PATHS:
        route = request.path
    else:
        found = request[ROUTE_MATCH] = match(request.method, starlette_path(request.raw_path))
        route = found.template
    started = time.perf_counter()
    deadline = asyncio.timeout(settings.request_timeout_s)
    try:
        length = request.content_length
        if length is not None and length > settings.max_body_bytes:
            response: web.StreamResponse = error_response(
                413, f"Request body too large (limit {settings.max_body_bytes} bytes)"
            )
        else:
            async with deadline:
                response = await handler(request)
    except TimeoutError as exc:
        if deadline.expired():
            response = error_response(504, f"Request timed out after {settings.request_timeout_s:g} s")
        else:  # the database's own timeouts (connect, command): it is away, not a bug
            response = _unavailable(request, route, exc, rid)
    except web.HTTPRequestEntityTooLarge:
        response = error_response(413, f"Request body too large (limit {settings.max_body_bytes} bytes)")
    except web.HTTPException as exc:  # aiohttp's own (should not happen: routing is ours)
        response = error_response(exc.status, exc.reason)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        if database_unavailable(exc, (h.pool for h in request.app[DATABASES].values())):
            response = _unavailable(request, route, exc, rid)
        else:
            # Crash recovery: the client gets agno's generic 500, the log gets the traceback.
            error_log.exception("unhandled error", extra={"request_id": rid})
            response = error_response(500, f"Internal server error ({type(exc).__name__})")
    response.headers[REQUEST_ID_HEADER] = rid
    elapsed = time.perf_counter() - started
    metrics.requests.labels(request.method, route, str(response.status)).inc()
    metrics.latency.labels(request.method, route).observe(elapsed)
    access_log.log(
        request.app.get(ACCESS_LOG_LEVEL, logging.INFO),
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


def _unavailable(request: web.Request, route: str, exc: BaseException, rid: str) -> web.Response:
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


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """agno's AuthMiddleware: JWT mode when configured (it wins over the key, as in agno),
    else the security key compared in constant time, else open."""
    settings = request.app[SETTINGS]
    key, jwt_config = settings.security_key, settings.jwt
    if (not key and jwt_config is None) or request.method == "OPTIONS" or request.path in OPEN_PATHS:
        return await handler(request)
    token = bearer_token(request.headers.get("Authorization", ""))
    if jwt_config is not None:
        refusal, identity = auth_jwt.authorize(jwt_config, token, request.method, request.path)
        if refusal is not None or identity is None:
            status, detail = refusal or (401, "Invalid token")
            return _refused(request, detail, status)
        if identity.user_id is not None:
            request[auth_jwt.USER_ID_KEY] = identity.user_id  # agno's request.state.user_id
        request[auth_jwt.IDENTITY_KEY] = identity  # user isolation, read by the views
        return await handler(request)
    assert key is not None
    if not token:
        return _refused(request, "Authorization header required")
    if not hmac.compare_digest(token.encode(), key.encode()):
        return _refused(request, "Invalid authentication token")
    return await handler(request)


def _refused(request: web.Request, detail: str, status: int = 401) -> web.Response:
    """agno's auth middleware writes CORS headers into its own 401/403 for an allowed origin,
    wildcard methods and headers included; the CORS middleware around it adds the rest."""
    response = error_response(status, detail)
    origin = request.headers.get("Origin")
    if origin and request.app[SETTINGS].cors.allows(origin):
        response.headers["Access-Control-Allow-Methods"] = "*"
        response.headers["Access-Control-Allow-Headers"] = "*"
    return response
