"""Send one request to the legacy AgentOS and to the native service, compare what comes back.

Equality is byte equality of the body plus equal status and content type. The only
normalisations are named where they are applied (`normalize`), each with its reason.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

import httpx


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: Optional[str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def send(client: httpx.Client, base: str, method: str, path: str, *, body: Any = None, raw: Optional[bytes] = None,
         headers: Optional[dict[str, str]] = None) -> Answer:  # fmt: skip
    hdrs = dict(headers or {})
    content = raw
    if body is not None:
        content = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    try:
        r = client.request(method, base + path, content=content, headers=hdrs)
    except (httpx.ReadError, httpx.RemoteProtocolError):
        # uvicorn drops a keep-alive connection after agno answers 500; the pooled connection
        # is then dead before this request was read. Only idempotent reads are retried.
        if method != "GET":
            raise
        r = client.request(method, base + path, content=content, headers=hdrs)
    return Answer(r.status_code, r.headers.get("content-type"), r.content)


def describe(legacy: Answer, native: Answer) -> str:
    lb, nb = legacy.body, native.body
    i = next((k for k in range(min(len(lb), len(nb))) if lb[k] != nb[k]), min(len(lb), len(nb)))
    return (
        f"status legacy={legacy.status} native={native.status}; content-type legacy={legacy.content_type!r} "
        f"native={native.content_type!r}\nfirst difference at byte {i}:\n"
        f"  legacy: ...{lb[max(0, i - 80):i + 120]!r}\n  native: ...{nb[max(0, i - 80):i + 120]!r}\n"
        f"legacy body: {lb[:3000]!r}\nnative body: {nb[:3000]!r}"
    )


def assert_same(legacy: Answer, native: Answer) -> None:
    if (legacy.status, legacy.content_type, legacy.body) != (native.status, native.content_type, native.body):
        raise AssertionError(describe(legacy, native))


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


def normalize(answer: Answer, replace: dict[str, str], extra: Optional[Callable[[bytes], bytes]] = None) -> Answer:
    """Swap the per-side session ids for one token and mask the write clock (see `mask_clock`)."""
    body = answer.body
    for old, new in replace.items():
        body = body.replace(old.encode(), new.encode())
    body = mask_clock(body)
    if extra:
        body = extra(body)
    return Answer(answer.status, answer.content_type, body)
