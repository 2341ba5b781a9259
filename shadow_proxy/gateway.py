"""The gateway's parts put together, each with one job and its collaborators named:

- `Sides` (sides.py): legacy and native, and the one counted way to call them;
- `Rollout` (rollout.py): the stages, the gate windows, the stored decisions;
- `Mirror` and `Judge` (mirroring.py): the queue, its workers, the verdicts;
- `Proxy` (proxying.py): the hot path.

`Gateway` owns no behaviour of its own beyond the snapshot the views show; the app keeps one at
`app[GATEWAY]` (shadow_proxy/app.py builds it, shadow_proxy/admin.py and readiness.py read it).
What is specific to the API behind the gateway comes in as data: the route table (`routes`)
and how to verify a write (`writes`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from agentos_session.routing import RouteTable
from agentos_session.sessions_api import SESSION_PAGES, SESSION_WRITES, SESSIONS, WriteVerification
from comparator import Rules
from comparator.noise import NoiseModel

from .config import GatewayConfig, Stage
from .dbids import DbIdLearner
from .metrics import GatewayMetrics
from .mirroring import Job, Judge, Mirror, Tally
from .model import Decision, Sample
from .proxying import Proxy
from .recorder import Recorder
from .rollout import Rollout
from .sides import Side, Sides
from .store import GatewayStore


class Gateway:
    """The parts of one gateway replica."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        legacy: Side | None,
        native: Side,
        rules: Rules,
        noise: NoiseModel | None,
        metrics: GatewayMetrics,
        store: GatewayStore | None,
        recorder: Recorder | None = None,
        redact: Callable[[Sample], Sample] | None = None,
        routes: RouteTable = SESSIONS,
        writes: WriteVerification = SESSION_WRITES,
        pages: frozenset[str] = SESSION_PAGES,
    ) -> None:
        self.config = config
        self.metrics = metrics
        # Set by the app once the sides are up (shadow_proxy/dbids.py), when there is a legacy side.
        self.dbids: DbIdLearner | None = None
        self.store = store
        self.sides = Sides(legacy, native, metrics)
        self.rollout = Rollout(config, has_legacy=legacy is not None, store=store, metrics=metrics)
        self.tally = Tally(config.gate.window, metrics)
        self.judge = Judge(
            config,
            rules=rules,
            noise=noise,
            tally=self.tally,
            store=store,
            redact=redact,
            metrics=metrics,
            stats=self.rollout.stats,
            pages=pages,
        )
        self.mirror = Mirror(
            config,
            sides=self.sides,
            judge=self.judge,
            windows=self.rollout.windows,
            routes=routes,
            writes=writes,
            metrics=metrics,
            recorder=recorder,
        )
        self.proxy = Proxy(
            config, sides=self.sides, rollout=self.rollout, mirror=self.mirror, routes=routes, metrics=metrics
        )

    # What the views, readiness and the tests read, under the names they have always had.
    @property
    def legacy(self) -> Side | None:
        return self.sides.legacy

    @property
    def native(self) -> Side:
        return self.sides.native

    @property
    def stages(self) -> dict[str, Decision]:
        return self.rollout.stages

    @property
    def queue(self) -> asyncio.Queue[Job]:
        return self.mirror.queue

    async def handle(self, request: web.Request) -> web.StreamResponse:
        return await self.proxy.handle(request)

    async def set_stage(self, group: str, stage: Stage, reason: str, by: str, expect: Stage | None = None) -> bool:
        return await self.rollout.set_stage(group, stage, reason, by, expect)

    async def refresh_stages(self) -> None:
        await self.rollout.refresh()

    async def gate_step(self) -> list[Decision]:
        return await self.rollout.gate_step()

    def snapshot(self) -> dict[str, Any]:
        """This replica's view, for the report page and `GET /shadow/stage`."""
        return {
            "generated_at": time.time(),
            "groups": self.rollout.groups_view(),
            "routes": self.tally.routes_view(),
            "mirror": self.mirror.view(),
        }
