"""Which failures mean "the database is away" — the one place that decides it, by exception class.

A request that fails because Postgres refuses, drops or stalls a connection, or because the
pools are closing at shutdown, is not a bug in the service and not the client's fault: the
client gets `503 {"detail": "Database unavailable (<ExceptionClass>)"}` with `Retry-After`, and
may try again (the gateway, like any 5xx, counts it as a native failure and falls back). Every
other unexpected exception stays agno's generic 500.

The classes, never the message text (asyncpg's texts change between releases):

* `OSError` — refused, reset, unreachable, the Unix socket gone; `TimeoutError` is one too (a
  connect timeout or asyncpg's `command_timeout`, both set from the request timeout).
* `asyncpg.PostgresConnectionError` (SQLSTATE class 08) — includes `ConnectionDoesNotExistError`,
  "the connection was closed in the middle of an operation".
* `asyncpg.exceptions.OperatorInterventionError` (class 57) — admin/crash shutdown, "cannot
  connect now" while the server starts, a query cancelled by the server.
* `asyncpg.exceptions.InsufficientResourcesError` (class 53) — too many connections, disk full.
* `asyncpg.InternalClientError` — the pool's bookkeeping failing under a closing pool.
* `asyncpg.InterfaceError` only while one of the app's pools is closing (shutdown): the same
  class also reports programming errors, which must stay 500s so they get fixed.
"""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg

# How long a client should wait before trying again: about one readiness round.
RETRY_AFTER_S = 2

_ALWAYS_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.InternalClientError,
)


def _chain(exc: BaseException) -> list[BaseException]:
    """`exc` and what it was raised from or during (`__cause__`, `__context__`), cycles cut."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not e for e in seen) and len(seen) < 16:
        seen.append(current)
        # As tracebacks show it: the explicit cause, else the context unless `from None` hid it.
        if current.__cause__ is not None:
            current = current.__cause__
        else:
            current = None if current.__suppress_context__ else current.__context__
    return seen


def database_unavailable(exc: BaseException, pools: Iterable[asyncpg.Pool]) -> bool:
    """True when `exc` means the database (or this process's connection to it) is away, given
    the app's `pools` (an InterfaceError counts only while one of them is closing).

    The whole chain counts: a connection lost inside `async with conn.transaction()` surfaces
    as the transaction's InterfaceError ("connection is closed") raised while handling the
    connection's own failure, and that first failure is the cause."""
    chain = _chain(exc)
    if any(isinstance(e, _ALWAYS_UNAVAILABLE) for e in chain):
        return True
    if any(isinstance(e, asyncpg.InterfaceError) for e in chain):
        return any(pool.is_closing() for pool in pools)
    return False


def unavailable_detail(exc: BaseException) -> str:
    """The client's text: the exception's class only (its message may name a host or a user)."""
    return f"Database unavailable ({type(exc).__name__})"
