"""CORS, as AgentOS answers it: the browser UI of agno (os.agno.com) calls the sessions API
from another origin, so moving that API must keep its CORS headers, not only its JSON.

AgentOS installs Starlette's `CORSMiddleware` with its allowed origins (the agno domains unless
configured), credentials allowed, and every method, request header and response header
allowed. The rules below are that middleware's, checked against the real AgentOS by
tests/contract/test_cors.py:

- a preflight (OPTIONS with `Origin` and `Access-Control-Request-Method`) is answered here, for
  any path, before routing and auth: 200 `OK`, or 400 `Disallowed CORS origin` (or `method`,
  `private-network`, comma-joined) in plain text;
- every other answer gets `Vary: Origin`; with an `Origin` header also
  `Access-Control-Allow-Credentials` and `-Expose-Headers`, and `-Allow-Origin` (the origin
  itself) when it is allowed. An unhandled error's 500 gets none of them (Starlette's error
  middleware sits outside CORS), and neither does ours.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from .core import CoreRequest, Handler
    from .routes import Match

# agno's default browser origins (agno.os.settings.AgnoAPISettings.cors_origin_list).
AGNO_ORIGINS = (
    "http://localhost:3000",
    "https://agno.com",
    "https://www.agno.com",
    "https://app.agno.com",
    "https://os-stg.agno.com",
    "https://os.agno.com",
)
ALL_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "QUERY")
PREFLIGHT_VARY = (
    "Origin, Access-Control-Request-Method, Access-Control-Request-Headers, Access-Control-Request-Private-Network"
)


@dataclass(frozen=True)
class CorsPolicy:
    origins: tuple[str, ...] = AGNO_ORIGINS
    origin_regex: str | None = None
    _compiled: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.origin_regex is not None:
            object.__setattr__(self, "_compiled", re.compile(self.origin_regex))

    def allows(self, origin: str) -> bool:
        return origin in self.origins or (self._compiled is not None and self._compiled.fullmatch(origin) is not None)


def policy_from_env(env: Mapping[str, str]) -> CorsPolicy:
    """`AGNO_CORS_ORIGINS` (comma-separated) replaces the origins, as `AgentOS(cors_allowed_origins=)`
    does; otherwise agno's `CORS_ORIGIN_LIST` (a JSON list, or comma-separated) is added to the
    agno domains, as AgentOS's settings do. `*` is dropped, as AgentOS drops it (credentials are
    allowed, so every origin is named). `AGNO_CORS_ORIGIN_REGEX` also allows matching origins."""
    explicit = _split(env.get("AGNO_CORS_ORIGINS", ""))
    origins = explicit or [*_split(env.get("CORS_ORIGIN_LIST", "")), *AGNO_ORIGINS]
    unique = tuple(dict.fromkeys(o for o in origins if o != "*"))
    return CorsPolicy(unique, env.get("AGNO_CORS_ORIGIN_REGEX") or None)


def _split(raw: str) -> list[str]:
    raw = raw.strip()
    if raw.startswith("["):
        try:
            items = json.loads(raw)
        except ValueError:
            items = []
        return [str(i).strip() for i in items if str(i).strip()]
    return [part.strip() for part in raw.split(",") if part.strip()]


def preflight(policy: CorsPolicy, headers: Mapping[str, str]) -> web.Response:
    """Starlette's preflight answer (allow_methods=*, allow_headers=*, allow_credentials)."""
    origin = headers["Origin"]
    out = {
        "Vary": PREFLIGHT_VARY,
        "Access-Control-Allow-Methods": ", ".join(ALL_METHODS),
        "Access-Control-Max-Age": "600",
        "Access-Control-Allow-Credentials": "true",
    }
    failures = []
    if policy.allows(origin):
        out["Access-Control-Allow-Origin"] = origin
    else:
        failures.append("origin")
    if headers["Access-Control-Request-Method"] not in ALL_METHODS:
        failures.append("method")
    requested = headers.get("Access-Control-Request-Headers")
    if requested is not None:
        out["Access-Control-Allow-Headers"] = requested
    if headers.get("Access-Control-Request-Private-Network") is not None:
        failures.append("private-network")
    if failures:
        return web.Response(status=400, text="Disallowed CORS " + ", ".join(failures), headers=out)
    return web.Response(status=200, text="OK", headers=out)


def add_simple_headers(policy: CorsPolicy, origin: str | None, response: web.StreamResponse) -> None:
    if origin is not None:
        response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Access-Control-Expose-Headers"] = "*"
        if policy.allows(origin):
            response.headers["Access-Control-Allow-Origin"] = origin
    vary = response.headers.getall("Vary", [])
    response.headers["Vary"] = ", ".join([*vary, "Origin"])


async def cors(policy: CorsPolicy, request: CoreRequest, found: Match | None, handler: Handler) -> web.Response:
    """The CORS stage of the core: inside `observe` (a crash's 500 has no CORS headers, as in
    AgentOS) and outside `authenticate` (a preflight needs no key; a 401 gets CORS headers)."""
    headers = request.headers
    origin = headers.get("Origin")
    if origin is not None and request.method == "OPTIONS" and "Access-Control-Request-Method" in headers:
        return preflight(policy, headers)
    response = await handler(request, found)
    add_simple_headers(policy, origin, response)
    return response
