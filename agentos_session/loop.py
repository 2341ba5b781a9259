"""The event loop both servers run on: asyncio's, or uvloop's with `AGNO_EVENT_LOOP=uvloop`."""

from __future__ import annotations

import asyncio
import logging
import os

log = logging.getLogger("agentos_session")


def new_event_loop() -> asyncio.AbstractEventLoop:
    """The standard library's loop unless `AGNO_EVENT_LOOP=uvloop`.

    uvloop (libuv) makes socket reads, writes and callbacks cheaper (4 to 35 % more req/s on
    the benchmark), but under saturation it serves connections unfairly: at 32 closed-loop
    connections on one run by id, p50 6-9 ms with p90 0.29-0.39 s and p99 1.4-1.6 s, where
    asyncio's loop gives p99 24-29 ms (the list: p99 449 vs 209 ms; docs/benchmarks.md). A client
    waiting seconds behind others costs more than the throughput buys, so asyncio's loop is the
    default and uvloop is an opt-in. Parity-neutral either way: no byte of an answer depends on
    the loop."""
    if os.environ.get("AGNO_EVENT_LOOP", "asyncio") == "uvloop":
        try:
            import uvloop
        except ImportError:  # pragma: no cover - a dependency; only a broken install lacks it
            log.warning("uvloop is not installed: serving on the asyncio event loop")
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()
