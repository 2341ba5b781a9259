"""Send one request to the legacy AgentOS and to the native service; judge the answers with the
project's comparator through the `parity` fixture (comparator.pytest_plugin), under the rules
of config/comparator.yaml (`parity_rules` in pyproject.toml): byte-identical bodies, equal
status, content type and Allow, and the known differences as `expected`.

The only normalisations are named where they are applied (`normalize`), each with its reason.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from agentos_session.routing import SAFE_METHODS
from comparator import Comparison, Request, Response
from comparator.pytest_plugin import Parity


def send(
    client: httpx.Client,
    base: str,
    method: str,
    path: str,
    *,
    body: Any = None,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    hdrs = dict(headers or {})
    content = raw
    if body is not None:
        content = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    if method not in SAFE_METHODS:
        # uvicorn drops a kept-alive connection after agno answers 500, and the client may not
        # have seen the close yet; a write sent on that connection cannot be sent again (it may
        # have run), so every write gets a fresh connection, as the gateway sends them.
        with httpx.Client(timeout=client.timeout) as fresh:
            r = fresh.request(method, base + path, content=content, headers=hdrs)
        return Response(r.status_code, dict(r.headers.multi_items()), r.content)
    try:
        r = client.request(method, base + path, content=content, headers=hdrs)
    except (httpx.ReadError, httpx.RemoteProtocolError):
        # The same dropped connection under a read: a safe request is sent once more.
        r = client.request(method, base + path, content=content, headers=hdrs)
    return Response(r.status_code, dict(r.headers.multi_items()), r.content)


def body_of(response: Response) -> Any:
    return json.loads(response.body)


@dataclass
class Pair:
    """Both services over the same database, and the test's `parity` checker. Unpacks as
    `(client, legacy_url, native_url)`."""

    client: httpx.Client
    legacy: str
    native: str
    parity: Parity
    # The last request `both` sent (legacy's form): the route `same` reports when given none.
    last: Request | None = None

    def __iter__(self) -> Iterator[Any]:
        return iter((self.client, self.legacy, self.native))

    def __getitem__(self, index: int) -> Any:
        return (self.client, self.legacy, self.native)[index]

    def both(self, method: str, legacy_path: str, native_path: str, **kw: Any) -> tuple[Response, Response]:
        self.last = Request(method, legacy_path)
        return (
            send(self.client, self.legacy, method, legacy_path, **kw),
            send(self.client, self.native, method, native_path, **kw),
        )

    def same(self, legacy: Response, native: Response, request: str | Request | None = None) -> Comparison:
        """The two answers are the same answer: a `match`, nothing else."""
        request = request or self.last
        return self.parity.verify(_side(legacy, "legacy"), _side(native, "native"), request=request, expect="match")

    def known(self, entry: str, legacy: Response, native: Response, request: str | Request) -> Comparison:
        """The answers differ exactly as the known difference `entry` says (the comparator
        checks the trigger and each side's status and fixed body against the YAML)."""
        comparison = self.parity.verify(
            _side(legacy, "legacy"), _side(native, "native"), request=request, expect="expected"
        )
        assert comparison.known == entry, comparison
        return comparison


def _side(response: Response, side: str) -> Response:
    return Response(response.status, response.headers, response.body, side, response.error)  # type: ignore[arg-type]


_ISO = re.compile(rb'"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)"')


def mask_clock(body: bytes, window_s: int = 5) -> bytes:
    """Nondeterminism: `created_at`/`updated_at` of a row written *by this request* are the
    server's clock, which can tick between the legacy and the native call. Timestamps within
    `window_s` of now become `"<now>"`; every other timestamp must still be equal."""
    now = time.time()

    def repl(m: re.Match[bytes]) -> bytes:
        ts = time.mktime(time.strptime(m.group(1).decode(), "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
        return b'"<now>"' if abs(ts - now) <= window_s else m.group(0)

    return _ISO.sub(repl, body)


def normalize(answer: Response, replace: dict[str, str], extra: Callable[[bytes], bytes] | None = None) -> Response:
    """Swap the per-side session ids for one token and mask the write clock (see `mask_clock`)."""
    body = answer.body
    for old, new in replace.items():
        body = body.replace(old.encode(), new.encode())
    body = mask_clock(body)
    if extra:
        body = extra(body)
    return Response(answer.status, answer.headers, body, answer.side)
