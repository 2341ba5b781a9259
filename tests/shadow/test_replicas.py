"""One parity verdict across replicas: three gateway processes on one database, each receiving a
third of the traffic, in front of the real agno AgentOS (and each with its own in-process native).

Each replica alone sees a third of the pairs, so if each judged its own window (as before the
shared counts) none would reach `min_samples` (or `min_rollback_samples`) in these tests: the
promotion at exactly `min_samples` pairs in all, and the rollback at exactly
`min_rollback_samples` comparisons in all with the faults seen by one replica only, both need the
evidence of all three. The decision is applied once (one stored gate decision, one counted).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from harness.processes import REPO, Process, free_port, stop
from harness.services import GATEWAY_COMMAND, reset_gateway_tables, start_gateway
from tests.shadow.faults import FaultyLegacy

DETAIL = "/sessions/s-agent-1"
MIN_SAMPLES = 60
MIN_ROLLBACK = 30


def gate_yaml(tmp_path: Path, **gate: Any) -> Path:
    """The shipped config/gateway.yaml with a test-sized gate (fast rounds and flushes)."""
    config = yaml.safe_load((REPO / "config" / "gateway.yaml").read_text())
    config["rules"] = str(REPO / "config" / "comparator.yaml")
    config["gate"] = {**config["gate"], "interval_s": 0.2, "flush_s": 0.2, **gate}
    config["rollout"] = {"poll_s": 0.2}
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


Start = Callable[[Path, str, str], Awaitable[Process]]


@pytest.fixture
async def start_replica(pg_dsn: str, seeded: None, tmp_path: Path) -> AsyncIterator[Start]:
    """`await start_replica(config, legacy_url, stage)` -> a gateway process on the shared database."""
    await reset_gateway_tables(pg_dsn)
    started: list[Process] = []

    async def start(config: Path, legacy_url: str, stage: str) -> Process:
        port = free_port()
        env = {
            "AGNO_PG_DSN": pg_dsn,
            "AGNO_DEFAULT_DB_ID": "main-db",
            "AGNO_LEGACY_URL": legacy_url,
            "AGNO_GATEWAY_CONFIG": str(config),
            "AGNO_GATEWAY_PORT": str(port),
            "AGNO_GATEWAY_HOST": "127.0.0.1",
            "AGNO_GATEWAY_STAGE": stage,
        }
        argv = (*GATEWAY_COMMAND[:-1], str(config))
        # In a thread: a fault proxy served by this event loop may be asked while it starts.
        process = await asyncio.to_thread(start_gateway, port, env, tmp_path / f"gateway-{len(started)}.log", argv)
        started.append(process)
        return process

    yield start
    for process in started:
        await asyncio.to_thread(stop, process)


async def get_json(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def send(session: aiohttp.ClientSession, replicas: list[Process], count: int, start: int = 0) -> None:
    """`count` reads, replica after replica (a third each), each answered 200."""
    for replica in itertools.islice(itertools.cycle(replicas), start, start + count):
        async with session.get(replica.url + DETAIL) as r:
            assert r.status == 200, await r.text()


async def compared(session: aiohttp.ClientSession, replicas: list[Process]) -> list[int]:
    """Each replica's own count of reads compared (its local window) since the stage changed."""
    views = [await get_json(session, r.url + "/shadow/stage") for r in replicas]
    return [v["groups"]["reads"]["window"]["comparisons"] for v in views]


async def wait_for(condition: Callable[[], Awaitable[bool]], timeout_s: float = 30.0) -> None:
    for _ in range(int(timeout_s / 0.1)):
        if await condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not reached in time")


async def stages(session: aiohttp.ClientSession, replicas: list[Process]) -> list[str]:
    return [(await get_json(session, r.url + "/shadow/stage"))["groups"]["reads"]["stage"] for r in replicas]


async def decisions_counted(session: aiohttp.ClientSession, replicas: list[Process], to_stage: str) -> float:
    """shadow_stage_decisions_total{group="reads", to_stage, by="gate"} summed over the replicas."""
    total = 0.0
    for replica in replicas:
        async with session.get(replica.url + "/metrics") as r:
            text = await r.text()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = sample.labels
                if (
                    sample.name == "shadow_stage_decisions_total"
                    and labels.get("group") == "reads"
                    and labels.get("to_stage") == to_stage
                    and labels.get("by") == "gate"
                ):
                    total += sample.value
    return total


async def gate_decisions(session: aiohttp.ClientSession, replica: Process) -> list[dict[str, Any]]:
    view = await get_json(session, replica.url + "/shadow/stage")
    return [d for d in view["decisions"] if d["group"] == "reads" and d["by"] == "gate"]


async def hold_still(session: aiohttp.ClientSession, replicas: list[Process], expected: int, stage: str) -> None:
    """Wait until every replica's verdicts are in and judged (the combined window holds them all,
    flushes and gate rounds every 0.2 s), then a few rounds more: the stage has not moved."""

    async def judged() -> bool:
        if sum(await compared(session, replicas)) != expected:
            return False
        views = [await get_json(session, r.url + "/shadow/stage") for r in replicas]
        return all((v["groups"]["reads"]["combined"] or {}).get("comparisons") == expected for v in views)

    await wait_for(judged)
    await asyncio.sleep(1.0)  # five gate rounds on each replica
    assert await stages(session, replicas) == [stage] * 3


async def test_three_replicas_promote_on_the_evidence_one_gateway_needs(
    start_replica: Start, legacy_url: str, tmp_path: Path
) -> None:
    # 0 mismatches in 60 has a Wilson upper bound of 6.0 % (z 1.96): under the 7 % target.
    config = gate_yaml(tmp_path, min_samples=MIN_SAMPLES, promote_max_mismatch_rate=0.07, min_rollback_samples=10_000)
    replicas = [await start_replica(config, legacy_url, "shadow") for _ in range(3)]
    async with aiohttp.ClientSession() as session:
        await send(session, replicas, MIN_SAMPLES - 1)
        await hold_still(session, replicas, MIN_SAMPLES - 1, "shadow")  # one pair short of the threshold
        assert await compared(session, replicas) == [20, 20, 19]  # each alone: a third of min_samples
        await send(session, replicas, 1, start=MIN_SAMPLES - 1)

        async def promoted() -> bool:
            return await stages(session, replicas) == ["primary"] * 3

        await wait_for(promoted)
        decisions = await gate_decisions(session, replicas[0])
        assert [(d["from"], d["to"]) for d in decisions] == [("shadow", "primary")]
        assert decisions[0]["reason"].startswith(f"{MIN_SAMPLES}/{MIN_SAMPLES} pairs agree")
        assert await decisions_counted(session, replicas, "primary") == 1  # taken once, by one replica

        async def fresh() -> bool:  # the pairs judged at shadow do not count for the next step
            views = [await get_json(session, r.url + "/shadow/stage") for r in replicas]
            return all((v["groups"]["reads"]["combined"] or {}).get("comparisons") == 0 for v in views)

        await wait_for(fresh)


async def test_three_replicas_roll_back_when_only_one_sees_the_faults(
    start_replica: Start, legacy_url: str, tmp_path: Path
) -> None:
    # At stage primary legacy gets the copies; the third replica's legacy changes every session_name.
    config = gate_yaml(tmp_path, min_samples=10_000, min_rollback_samples=MIN_ROLLBACK, rollback_mismatch_rate=0.1)
    async with FaultyLegacy(legacy_url) as faulty:
        faulty.mode = "mutate"
        replicas = [await start_replica(config, url, "primary") for url in (legacy_url, legacy_url, faulty.url)]
        async with aiohttp.ClientSession() as session:
            await send(session, replicas, MIN_ROLLBACK - 1)
            await hold_still(session, replicas, MIN_ROLLBACK - 1, "primary")  # 9 of 29: too few to judge
            assert await compared(session, replicas) == [10, 10, 9]
            await send(session, replicas, 1, start=MIN_ROLLBACK - 1)  # the faulty replica's 10th

            async def rolled_back() -> bool:
                return await stages(session, replicas) == ["shadow"] * 3

            await wait_for(rolled_back)
            decisions = await gate_decisions(session, replicas[0])
            assert [(d["from"], d["to"]) for d in decisions] == [("primary", "shadow")]
            assert f"mismatch rate 10/{MIN_ROLLBACK}" in decisions[0]["reason"]
            assert await decisions_counted(session, replicas, "shadow") == 1
            mismatches = await get_json(session, replicas[0].url + "/shadow/mismatches?path=session_name")
            assert mismatches["count"] == 10  # stored by the faulty replica, seen by every one
