"""The shipped configuration files, installed as the package `agentos_session.config` (see
`[tool.setuptools]` in pyproject.toml) so that a wheel carries them; read them through
`agentos_session.defaults.default_file`."""
