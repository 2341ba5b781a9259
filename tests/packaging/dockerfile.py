"""The Dockerfile and its build context, read the way Docker reads them, so tests can check the
image's instructions and run its stages' commands without a Docker daemon."""

from __future__ import annotations

import json
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from docker.utils.build import exclude_paths
from dockerfile_parse import DockerfileParser

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)  # (INSTRUCTION, value)

    def values(self, instruction: str) -> list[str]:
        return [value for name, value in self.instructions if name == instruction]

    def env(self) -> dict[str, str]:
        """The stage's ENV, as `KEY=VALUE` pairs (the only ENV form the Dockerfile uses)."""
        return dict(item.split("=", 1) for value in self.values("ENV") for item in shlex.split(value))


def stages(path: Path = DOCKERFILE) -> list[Stage]:
    result: list[Stage] = []
    for item in DockerfileParser(str(path)).structure:
        instruction, value = item["instruction"], item["value"]
        if instruction == "FROM":
            base, _, name = value.partition(" AS ")
            result.append(Stage(base.strip(), name.strip() or None))
        elif instruction != "COMMENT":
            result[-1].instructions.append((instruction, value))
    return result


@dataclass(frozen=True)
class Run:
    """A RUN instruction: its BuildKit bind mounts ({target: (from stage, source)}) and argv."""

    mounts: dict[str, tuple[str, str]]
    argv: list[str]


def parse_run(value: str) -> Run:
    words = shlex.split(value)
    mounts = {}
    while words and words[0].startswith("--mount="):
        options = dict(part.split("=", 1) for part in words.pop(0).removeprefix("--mount=").split(","))
        assert options.get("type") == "bind", f"only bind mounts are understood here: {options}"
        mounts[options["target"]] = (options["from"], options["source"])
    return Run(mounts, words)


def exec_form(value: str) -> list[str]:
    """The JSON array of an exec-form instruction (ValueError for the shell form)."""
    argv = json.loads(value)
    if not (isinstance(argv, list) and all(isinstance(a, str) for a in argv)):
        raise ValueError(f"not an exec-form array: {value}")
    return argv


def context_files(root: Path = REPO) -> list[str]:
    """The files `docker build` sends from `root`, by .dockerignore (docker-py applies Docker's
    own matching rules, exceptions included)."""
    patterns = [
        line.strip()
        for line in (root / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    return sorted(p for p in exclude_paths(str(root), patterns) if (root / p).is_file())


def copy_context(dest: Path, root: Path = REPO) -> list[str]:
    """`COPY . .` of the build stage: the context's files, modes kept, into `dest`."""
    files = context_files(root)
    for name in files:
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, dest / name)
    return files
