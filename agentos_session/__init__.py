"""The `agentos-session` command: one entry point, with each part's commands."""
