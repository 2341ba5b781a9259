"""The background readiness loop shared by the native service and the gateway: ask a check every
few seconds, whether or not anybody calls /readyz (so the readiness gauges show an outage between
probes), and log each change of a dependency's state once, not once per round.

It lives outside `session_service` and `shadow_proxy` so that both can use it without importing
each other; it imports only the standard library.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping


async def watch_readiness(
    check: Callable[[], Awaitable[Mapping[str, str]]],
    interval_s: float,
    log: logging.Logger,
    describe: Callable[[str], str] = str,
) -> None:
    """Forever (until cancelled): `await check()` -> `{what: reason}` of what is not ready (empty:
    all is), then sleep `interval_s`. A newly failing `what` is logged at WARNING with its reason,
    a recovered one at INFO, each named by `describe(what)`. An exception from `check` is logged
    and the loop goes on: a bug in a check must not end the watching."""
    down: dict[str, str] = {}
    while True:
        try:
            now = dict(await check())
        except Exception:
            log.exception("readiness check failed; retrying in %.1f s", interval_s)
        else:
            for what, reason in now.items():
                if what not in down:
                    log.warning("%s is not ready: %s", describe(what), reason)
            for what in down.keys() - now.keys():
                log.info("%s is ready again", describe(what))
            down = now
        await asyncio.sleep(interval_s)
