"""The legacy side of the differential tests: a real agno AgentOS 3.1.10, seeded with real runs."""
