"""Where the shipped configuration files are, in any install.

`config/` of the checkout is installed as the package `agentos_session.config` (pyproject.toml
maps it there), so a wheel built with `pip install .` carries gateway.yaml, comparator.yaml and
known_differences.yaml, and an editable install resolves the same name to the checkout's files.
This module imports nothing of the parts (service, comparator, gateway), so any of them may ask
it for a default file without depending on another.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

PACKAGE = "agentos_session.config"


def default_file(name: str) -> Path:
    """The shipped config file `name` (e.g. "gateway.yaml", "prometheus/alerts.yml") as a real
    path: the YAML files name each other by relative path (gateway.yaml's `rules:`,
    comparator.yaml's `known_differences:`), so they must be files side by side on disk, which
    they are for every install pip makes (it never installs a package zipped)."""
    path = resources.files(PACKAGE).joinpath(name)
    if not isinstance(path, Path):
        raise RuntimeError(f"{PACKAGE} is not installed as files on disk: {path!r}")
    return path
