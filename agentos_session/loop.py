"""The event loop both servers run on: uvloop's, unless `AGNO_EVENT_LOOP=asyncio`."""

from __future__ import annotations

import asyncio
import logging
import os

log = logging.getLogger("agentos_session")


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop (libuv): the same asyncio API with cheaper socket reads, writes and
    callbacks, which is most of what a request costs besides the SQL (and most of what the
    gateway's hop costs). Parity-neutral: no byte of an answer depends on the loop.
    `AGNO_EVENT_LOOP=asyncio` keeps the stdlib loop (for a platform uvloop does not support,
    or to rule it out)."""
    if os.environ.get("AGNO_EVENT_LOOP", "uvloop") != "asyncio":
        try:
            import uvloop
        except ImportError:  # pragma: no cover - a dependency; only a broken install lacks it
            log.warning("uvloop is not installed: serving on the asyncio event loop")
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()
