"""The native service as a function: a request value in, a `web.Response` out.

Two callers share it, so both run exactly the same code:

- the aiohttp app (session_service/app.py), a thin adapter: one middleware reads the body
  (within the limit and the request timeout), builds a `CoreRequest` and returns `handle`'s
  answer;
- the gateway's in-process native side (shadow_proxy/sides.py), which builds the value from the
  request it would otherwise send over HTTP, without a second HTTP serialisation and parse.

`handle` is the old middleware stack as plain calls, in the same order (outermost first):
`observe` (request id, timeout, 413, 503/500 shaping, metrics, access line), `cors`,
`authenticate` (security key or JWT), then the operational routes (/healthz, /readyz, /metrics,
/openapi.json) or `dispatch` (Starlette-style routing, then the view).

`state` is the app's `web.Application` mapping (settings, metrics, databases under the typed
keys of session_service/appkeys.py): a value of the request carries it as `.app`, so views read
`request.app[DATABASES]` as they did on a `web.Request`. Nothing here holds a connection, a
transport or a task of the caller: the value is plain data.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy, MultiMapping
from yarl import URL

from . import routes, views
from .appkeys import SETTINGS
from .auth_jwt import Identity
from .cors import cors
from .health import healthz, readyz
from .metrics import metrics_view
from .middleware import authenticate, observe
from .openapi import document_bytes, openapi_view
from .routes import Match
from .validation import starlette_path

BodyRefusal = Literal["too_large", "timeout"]


@dataclass(frozen=True, slots=True)
class CoreRequest:
    """One request as the core sees it: what `web.Request` gave the views, as plain data.

    `raw_path` is the request target as sent (aiohttp's `raw_path`: path and query, escapes
    kept); `path` and `query` are parsed from it exactly as aiohttp does (`parse_target`).
    `peer` is the connection's address; `from_gateway` says the caller is the gateway's
    in-process side, whose last `X-Forwarded-For` hop is then the client's address (it is never
    set by the HTTP adapter). `body_refused` is set by a caller that did not read the body:
    over the limit, or not in time; `arrived` (the event loop's clock) starts the request's
    deadline and its duration, so time spent reading the body counts."""

    app: web.Application
    method: str
    raw_path: str
    path: str
    query: MultiMapping[str]
    headers: CIMultiDictProxy[str]
    body: bytes
    peer: str | None
    arrived: float
    from_gateway: bool = False
    body_refused: BodyRefusal | None = None
    # Set by `authenticate` in JWT mode: who the verified token says the caller is.
    identity: Identity | None = None

    async def read(self) -> bytes:
        """The body, as `web.Request.read()` gave it to the views."""
        return self.body


def parse_target(target: str) -> URL:
    """The relative URL aiohttp's HTTP parser and `web.Request` make of a request target
    (aiohttp 3.14 `_http_parser.pyx`, origin-form: split at the first `?` and `#`,
    `URL.build(..., encoded=True)`; absolute-form: its relative part), so `.path` and `.query`
    (a multidict, repeated keys and `;` as aiohttp gives them) are the same on both paths."""
    if target.startswith("/"):
        path, has_query, rest = target.partition("?")  # a `#` before the `?` stays in the path
        if has_query:
            query, _, fragment = rest.partition("#")
        else:
            query = ""
            path, _, fragment = path.partition("#")
        return URL.build(path=path, query_string=query, fragment=fragment, encoded=True)
    url = URL(target, encoded=True)
    return url.relative() if url.absolute else url


def request_value(
    app: web.Application,
    method: str,
    target: str,
    headers: Mapping[str, str] | CIMultiDictProxy[str],
    body: bytes,
    *,
    peer: str | None,
    arrived: float,
    from_gateway: bool = False,
    body_refused: BodyRefusal | None = None,
) -> CoreRequest:
    """A `CoreRequest` for `method target` (raw, as sent) with these headers and body."""
    url = parse_target(target)
    frozen = headers if isinstance(headers, CIMultiDictProxy) else CIMultiDictProxy(CIMultiDict(headers))
    return CoreRequest(
        app, method, target, url.path, url.query, frozen, body, peer, arrived, from_gateway, body_refused
    )


Handler = Callable[[CoreRequest, Match | None], Awaitable[web.Response]]


async def dispatch(request: CoreRequest, found: Match | None) -> web.Response:
    """Every non-operational path: the Starlette-style match `observe` made, then the view."""
    if found is None:  # an operational path with another method (`POST /healthz`)
        found = routes.match(request.method, starlette_path(request.raw_path))
    if found.status == 404:
        return views.error_response(404, "Not Found")
    if found.status == 405:
        return views.error_response(405, "Method Not Allowed", headers={"Allow": ", ".join(found.allow)})
    assert found.route is not None
    handler = views.HANDLERS[found.route.handler_name]
    try:
        return await handler(request, found.params)
    except views.HTTPError as exc:
        return views.error_response(exc.status, exc.detail)
    except views.RequestInvalid as exc:
        return views.error_response(422, exc.errors)


# Open, no key (middleware.OPEN_PATHS). `/openapi.json` is read once, at import.
OPERATIONAL: dict[str, Callable[[CoreRequest], Awaitable[web.Response]]] = {
    "/healthz": healthz,
    "/readyz": readyz,
    "/metrics": metrics_view,
    "/openapi.json": openapi_view(document_bytes()),
}


async def route(request: CoreRequest, found: Match | None) -> web.Response:
    """The operational routes answer GET (and HEAD, whose body the transport drops, as
    aiohttp's `add_get` did); every other request goes to `dispatch`."""
    view = OPERATIONAL.get(request.path) if request.method in ("GET", "HEAD") else None
    if view is not None:
        return await view(request)
    return await dispatch(request, found)


async def _authenticated(request: CoreRequest, found: Match | None) -> web.Response:
    return await authenticate(request, found, route)


async def _cors(request: CoreRequest, found: Match | None) -> web.Response:
    return await cors(request.app[SETTINGS].cors, request, found, _authenticated)


async def handle(request: CoreRequest) -> web.Response:
    """The whole service for one request: observe(cors(authenticate(route))). Never raises
    but for cancellation: every failure is an answer (`observe`)."""
    return await observe(request, _cors)


def response_parts(response: web.Response, method: str) -> tuple[int, dict[str, Any], bytes]:
    """(status, headers, body) of a core answer as an HTTP client would read them from aiohttp:
    `Content-Length` set (none on 1xx, 204, 304), no body for HEAD, 204 or 304."""
    body = response.body
    if body is None:
        data = b""
    elif isinstance(body, bytes | bytearray):
        data = bytes(body)
    else:  # a streamed payload: the core never answers one, and losing it must not be silent
        raise TypeError(f"a core answer's body is bytes, not {type(body).__name__}")
    headers: dict[str, Any] = dict(response.headers)
    status = response.status
    if status < 200 or status in (204, 304):
        headers.pop("Content-Length", None)
        return status, headers, b""
    headers["Content-Length"] = str(len(data))
    return status, headers, b"" if method == "HEAD" else data
