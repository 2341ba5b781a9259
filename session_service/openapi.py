"""`GET /openapi.json`: agno AgentOS's own OpenAPI document, cut down to the routes this service
serves (the /sessions operations in `agentos_session.sessions_api`) and the components they
reference.

The document is a captured copy, `session_service/openapi.json`, written by
`scripts/capture_openapi.py` from agno's FastAPI app: the service never imports agno (a test
dependency only), and only agno renders agno's schemas exactly. tests/reliability/test_openapi.py
compares the served document with a real AgentOS's `/openapi.json`, so a stale copy fails.
`sessions_subset` is the one definition of "the part of agno's document we serve", used by the
script and the test alike.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from importlib import resources
from typing import TYPE_CHECKING, Any

from aiohttp import web

from agentos_session.sessions_api import SESSION_ROUTES

if TYPE_CHECKING:
    from .core import CoreRequest

DOCUMENT = "openapi.json"
REF_PREFIX = "#/components/"


def _refs(node: Any) -> Iterator[str]:
    """Every `$ref` below `node`."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def sessions_subset(document: dict[str, Any]) -> dict[str, Any]:
    """agno's whole document -> the operations of SESSION_ROUTES (in agno's order) and the
    components they need, transitively (schemas by `$ref`, security schemes by name)."""
    wanted: dict[str, set[str]] = {}
    for route in SESSION_ROUTES:
        wanted.setdefault(route.template, set()).add(route.method.lower())
    paths: dict[str, Any] = {}
    for template, operations in document["paths"].items():
        if template in wanted:
            paths[template] = {m: op for m, op in operations.items() if m in wanted[template]}
    components = document.get("components", {})
    kept: dict[str, dict[str, Any]] = {}
    todo = list(_refs(paths))
    while todo:
        ref = todo.pop()
        if not ref.startswith(REF_PREFIX):
            continue
        section, name = ref[len(REF_PREFIX) :].split("/", 1)
        if name in kept.get(section, {}):
            continue
        value = components[section][name]
        kept.setdefault(section, {})[name] = value
        todo.extend(_refs(value))
    schemes = {
        name
        for operations in paths.values()
        for op in operations.values()
        for requirement in op.get("security", [])
        for name in requirement
    }
    if schemes:
        kept["securitySchemes"] = {n: components["securitySchemes"][n] for n in sorted(schemes)}
    # agno's order for every section (FastAPI sorts schemas by name).
    ordered = {
        section: {n: kept[section][n] for n in components[section] if n in kept[section]}
        for section in components
        if section in kept
    }
    out: dict[str, Any] = {"openapi": document["openapi"], "info": document["info"], "paths": paths}
    if ordered:
        out["components"] = ordered
    return out


def document_bytes() -> bytes:
    """The shipped document as FastAPI sends it: compact JSON, UTF-8."""
    text = resources.files("session_service").joinpath(DOCUMENT).read_text(encoding="utf-8")
    return json.dumps(json.loads(text), ensure_ascii=False, separators=(",", ":")).encode()


def openapi_view(body: bytes) -> Callable[[CoreRequest], Awaitable[web.Response]]:
    """The handler of `GET /openapi.json`, serving `body` (read once, when the app is built)."""

    async def openapi(request: CoreRequest) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    return openapi
