"""The real agno AgentOS 3.1.10 that the differential tests compare against (contract section 7).

Run with (cwd = repo root)::

    AGNO_DB_URL=postgresql+psycopg://... FAKE_OPENAI_URL=http://127.0.0.1:PORT/v1 \\
    AGNO_TELEMETRY=false python -m uvicorn harness.agentos_app:app --host 127.0.0.1 --port 7777

Components (all models are `OpenAIChat(id="gpt-4o", api_key="sk-dummy", base_url=FAKE_OPENAI_URL)`):

* agent ``basic-agent`` ("Basic Agent", markdown=True), db ``main-db``;
* team ``basic-team`` ("Basic Team") with member agent ``member-agent`` ("Member Agent"), db ``main-db``;
* workflow ``basic-workflow`` ("Basic Workflow") with one Step ``s1`` running agent ``wf-agent``
  ("WF Agent", no db of its own: step runs are embedded in the workflow run), db ``main-db``;
* only if ``AGNO_SECOND_DB_URL`` is set: agent ``second-agent`` ("Second Agent") on a second
  ``PostgresDb(id="second-db")``. AgentOS registers the db of every agent, team and workflow
  (`AgentOS._auto_discover_databases`), so it then knows two db ids: ``main-db`` and ``second-db``.
  (`AgentOS(db=...)` would also register it, but it is also the default db for components without
  one, so an extra agent is the less intrusive way.)

`build_components()` is shared with `harness.seed`, so seeded rows are written by exactly the
objects this AgentOS serves. `app` is built lazily on first attribute access (PEP 562), so this
module can be imported without the environment variables.
"""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("AGNO_TELEMETRY", "false")

from agno.agent import Agent  # noqa: E402
from agno.db.postgres import PostgresDb  # noqa: E402
from agno.models.openai import OpenAIChat  # noqa: E402
from agno.os import AgentOS  # noqa: E402
from agno.team import Team  # noqa: E402
from agno.workflow import Workflow  # noqa: E402
from agno.workflow.step import Step  # noqa: E402

OS_ID = "test-os"
MAIN_DB_ID = "main-db"
SECOND_DB_ID = "second-db"
AGENT_ID = "basic-agent"
TEAM_ID = "basic-team"
MEMBER_ID = "member-agent"
WORKFLOW_ID = "basic-workflow"
WF_AGENT_ID = "wf-agent"
SECOND_AGENT_ID = "second-agent"


def build_components(db_url: str, openai_url: str, second_db_url: str | None = None) -> dict[str, Any]:
    """The dbs, agents, team and workflow of the legacy AgentOS (fresh objects on each call)."""

    def model() -> OpenAIChat:
        return OpenAIChat(id="gpt-4o", api_key="sk-dummy", base_url=openai_url)

    db = PostgresDb(db_url=db_url, id=MAIN_DB_ID)  # schema "ai", tables agno_sessions / agno_runs
    agent = Agent(id=AGENT_ID, name="Basic Agent", model=model(), db=db, markdown=True)
    member = Agent(id=MEMBER_ID, name="Member Agent", model=model(), db=db)
    team = Team(id=TEAM_ID, name="Basic Team", model=model(), db=db, members=[member])
    workflow = Workflow(
        id=WORKFLOW_ID,
        name="Basic Workflow",
        db=db,
        steps=[Step(name="s1", agent=Agent(id=WF_AGENT_ID, name="WF Agent", model=model()))],
    )
    components: dict[str, Any] = {
        "db": db,
        "agent": agent,
        "member": member,
        "team": team,
        "workflow": workflow,
        "second_db": None,
        "second_agent": None,
    }
    if second_db_url:
        second_db = PostgresDb(db_url=second_db_url, id=SECOND_DB_ID)
        components["second_db"] = second_db
        components["second_agent"] = Agent(id=SECOND_AGENT_ID, name="Second Agent", model=model(), db=second_db)
    return components


def build_agent_os(db_url: str, openai_url: str, second_db_url: str | None = None) -> AgentOS:
    c = build_components(db_url, openai_url, second_db_url)
    agents = [c["agent"]]
    if c["second_agent"] is not None:
        agents.append(c["second_agent"])
    return AgentOS(id=OS_ID, agents=agents, teams=[c["team"]], workflows=[c["workflow"]], telemetry=False)


def _from_env() -> AgentOS:
    return build_agent_os(
        os.environ["AGNO_DB_URL"],
        os.environ["FAKE_OPENAI_URL"],
        os.environ.get("AGNO_SECOND_DB_URL") or None,
    )


_agent_os: AgentOS | None = None
_app: Any = None


def __getattr__(name: str) -> Any:
    """`agent_os` and `app` are built from the environment on first access (for uvicorn)."""
    global _agent_os, _app
    if name == "agent_os":
        if _agent_os is None:
            _agent_os = _from_env()
        return _agent_os
    if name == "app":
        if _app is None:
            _app = __getattr__("agent_os").get_app()
        return _app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
