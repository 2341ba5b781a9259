"""The background readiness loop (agentos_session.watch): each change of state logged once, a
failing check survived, the loop ended only by cancelling it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

import pytest

from agentos_session.watch import watch_readiness


async def run_rounds(rounds: list[Mapping[str, str] | Exception], caplog: pytest.LogCaptureFixture) -> list[str]:
    """Run the loop over `rounds` (what each check answers or raises), then cancel it; -> the
    messages it logged, in order."""
    answers = iter(rounds)
    done = asyncio.Event()

    async def check() -> Mapping[str, str]:
        answer = next(answers, None)
        if answer is None:
            done.set()
            return {}
        if isinstance(answer, Exception):
            raise answer
        return answer

    log = logging.getLogger("test.watch")
    with caplog.at_level(logging.INFO, logger="test.watch"):
        task = asyncio.create_task(watch_readiness(check, 0.001, log, describe=lambda db: f"database {db}"))
        await asyncio.wait_for(done.wait(), timeout=10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    return [r.getMessage() for r in caplog.records if r.name == "test.watch"]


async def test_each_change_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    down = {"main-db": "database unreachable (ConnectionRefusedError)"}
    messages = await run_rounds([{}, down, down, down, {}, {}], caplog)
    assert messages == [
        "database main-db is not ready: database unreachable (ConnectionRefusedError)",
        "database main-db is ready again",
    ]


async def test_dependencies_change_on_their_own(caplog: pytest.LogCaptureFixture) -> None:
    messages = await run_rounds([{"a": "x"}, {"a": "x", "b": "y"}, {"b": "y"}], caplog)
    assert messages == [
        "database a is not ready: x",
        "database b is not ready: y",
        "database a is ready again",
        "database b is ready again",  # the last round (nothing down) ends the run
    ]


async def test_a_failing_check_does_not_end_the_loop(caplog: pytest.LogCaptureFixture) -> None:
    messages = await run_rounds([RuntimeError("bug"), {"a": "x"}], caplog)
    assert messages[0] == "readiness check failed; retrying in 0.0 s"
    assert messages[1:] == ["database a is not ready: x", "database a is ready again"]
