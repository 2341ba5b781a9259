"""The known differences `database-away-*`, asserted like the contract tests assert theirs: a real
agno AgentOS and the native service (each its own process) over one embedded Postgres of their
own, the Postgres stopped with its `pg_ctl`, one request of every sessions route sent to both,
each pair judged by the comparator (`parity`) under config/known_differences.yaml.

agno answers every route `500 {"detail":"Internal server error (OperationalError)"}`; native
answers `503 {"detail":"Database unavailable (<class>)"}` with Retry-After. The same requests
with the database up are a `match` or at least not these entries (checked first, so the
trigger cannot be mistaken for one that holds for any pair of the route)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from comparator import Request, compare
from comparator.pytest_plugin import Parity
from harness.processes import Process
from harness.services import start_legacy, start_native
from session_service.errors import RETRY_AFTER_S
from tests.contract.differential import Pair, send
from tests.reliability.conftest import StoppablePg

# entry -> (method, path, body): one request of each route, on a session and run that exist.
REQUESTS: dict[str, tuple[str, str, Any]] = {
    "database-away-list": ("GET", "/sessions?type=agent", None),
    "database-away-read": ("GET", "/sessions/away-1?type=agent", None),
    "database-away-runs": ("GET", "/sessions/away-1/runs?type=agent", None),
    "database-away-run-previews": ("GET", "/sessions/away-1/run-previews?type=agent", None),
    "database-away-run": ("GET", "/sessions/away-1/runs/no-such-run?type=agent", None),
    "database-away-create": ("POST", "/sessions?type=agent", {"session_id": "away-2", "agent_id": "a"}),
    "database-away-rename": ("POST", "/sessions/away-1/rename?type=agent", {"session_name": "n"}),
    "database-away-patch": ("PATCH", "/sessions/away-1?type=agent", {"session_name": "m"}),
    "database-away-delete": ("DELETE", "/sessions/away-1?type=agent", None),
    "database-away-bulk-delete": ("DELETE", "/sessions", {"session_ids": ["away-9"], "session_types": ["agent"]}),
}
LEGACY_BODY = b'{"detail":"Internal server error (OperationalError)"}'


@pytest.fixture(scope="module")
def both_on_own_pg(own_pg: StoppablePg) -> Iterator[tuple[Process, Process]]:
    # No model is called by these routes; the fake OpenAI URL is never reached.
    legacy = start_legacy(own_pg.dsn, "http://127.0.0.1:9", name="agentos-db-away")
    try:
        native = start_native(
            {"AGNO_PG_DSN": own_pg.dsn, "AGNO_DEFAULT_DB_ID": "main-db", "AGNO_REQUEST_TIMEOUT_S": "10"},
            name="native-db-away",
        )
        try:
            yield legacy, native
        finally:
            native.close()
    finally:
        legacy.close()


def _request(method: str, path: str, body: Any) -> Request:
    return Request(method, path, body=b"" if body is None else json.dumps(body).encode())


def test_database_away_is_the_registered_difference_on_every_route(
    both_on_own_pg: tuple[Process, Process], own_pg: StoppablePg, parity: Parity
) -> None:
    legacy, native = both_on_own_pg
    with httpx.Client(timeout=30) as client:
        pair = Pair(client, legacy.url, native.url, parity)
        created = send(
            client, legacy.url, "POST", "/sessions?type=agent", body={"session_id": "away-1", "agent_id": "a"}
        )
        assert created.status == 201, created.body
        # Database up: no pair of these requests is explained by a database-away entry.
        for method, path, body in REQUESTS.values():
            if method == "GET":
                lr, nr = pair.both(method, path, path, body=body)
                comparison = compare(lr, nr, parity.rules, request=_request(method, path, body))
                assert comparison.known is None or not comparison.known.startswith("database-away"), comparison
        own_pg.stop()
        try:
            answers = {entry: pair.both(m, p, p, body=b) for entry, (m, p, b) in REQUESTS.items()}
        finally:
            own_pg.start()
    for entry, (legacy_answer, native_answer) in answers.items():
        method, path, body = REQUESTS[entry]
        assert legacy_answer.status == 500 and legacy_answer.body == LEGACY_BODY, (entry, legacy_answer)
        assert native_answer.status == 503, (entry, native_answer)
        assert json.loads(native_answer.body)["detail"].startswith("Database unavailable ("), native_answer.body
        assert native_answer.headers.get("retry-after", native_answer.headers.get("Retry-After")) == str(RETRY_AFTER_S)
        pair.known(entry, legacy_answer, native_answer, _request(method, path, body))
    print(f"\n[database-away] {len(answers)} routes: legacy 500 (OperationalError), native 503 + Retry-After")
