"""Per-side request transforms (`legacy.transform`, `native.transform` in gateway.yaml): the
headers a side needs that the client does not send (a different security key for each side, a
canary marker) or must not reach it, and a Host rewrite.

The transform is applied inside the side (`TransformedSide.send`), so every request the gateway
sends to it gets it, whoever sends it: the client's request at every stage, the mirrored copy,
a fallback, the recheck of a mismatch, the read-back of a write, and the gateway's own probes
(readiness, the legacy AgentOS's `/config`). Nothing that is kept holds the transformed request:
mirroring, the mismatch store, the recorder and the logs see the client's request only, and the
header names a transform sets join the redaction policy anyway
(`GatewayConfig.redacted_headers`), so a client sending its own value of one is redacted too.

`apply` is pure and also used by `agentos-session replay --config`, so a replay reaches each
side as the gateway's traffic did.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from comparator import Request
from comparator import Side as SideName

from .config import Transform
from .sides import Answer, Side


@dataclass(frozen=True)
class Headers:
    """A `Transform` ready to apply: lower-cased names to drop, then (name, value) to set."""

    drop: frozenset[str]
    add: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, transform: Transform) -> Headers:
        add = tuple((name, value.get_secret_value()) for name, value in transform.set.items())
        if transform.host is not None:
            add += (("Host", transform.host),)
        drop = frozenset(n.lower() for n in transform.remove) | {name.lower() for name, _ in add}
        return cls(drop, add)


def apply(request: Request, headers: Headers) -> Request:
    """`request` as the side gets it: the removed and the set names dropped (in any case, so a
    client's `authorization` cannot ride along beside the set `Authorization`), then the set ones."""
    kept = {k: v for k, v in request.headers.items() if k.lower() not in headers.drop}
    return dataclasses.replace(request, headers={**kept, **dict(headers.add)})


class TransformedSide:
    """A side whose every request is transformed first; the rest is the side's own. `inner` is
    the side itself (readiness and the metrics page look through to an in-process native)."""

    def __init__(self, inner: Side, transform: Transform) -> None:
        self.inner = inner
        self.name: SideName = inner.name
        self.headers = Headers.of(transform)

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        await self.inner.close()

    async def send(self, request: Request, timeout_s: float, max_body_bytes: int | None = None) -> Answer:
        return await self.inner.send(apply(request, self.headers), timeout_s, max_body_bytes)


def transformed(side: Side, transform: Transform) -> Side:
    """`side` with `transform` applied to each request; the side itself when there is nothing to do."""
    return side if transform.empty else TransformedSide(side, transform)


def unwrapped(side: Side) -> Side:
    """The side under any transform (what `isinstance` checks must look at)."""
    while isinstance(side, TransformedSide):
        side = side.inner
    return side
