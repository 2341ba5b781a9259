"""The legacy side of the differential tests as pytest fixtures (`fixtures`): a real agno AgentOS
3.1.10, seeded with real runs; what it runs is in the `harness` package."""
