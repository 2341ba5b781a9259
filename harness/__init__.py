"""The development harness: what the tests, the benchmarks and `make demo` run the project with.

A real agno AgentOS (`agentos_app`) seeded by real agent runs (`seed`) against a local fake OpenAI
endpoint (`fake_openai`), a Postgres to put it on (`postgres`), and the servers as child processes
(`processes`, `services`). It is not shipped in the wheel (`[tool.setuptools] packages` does not
list it) and nothing in the shipped packages imports it; `tests/` builds its pytest fixtures on it.
"""
