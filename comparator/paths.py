"""Paths into a JSON body, their templates, and the globs that rules use to name them.

A path is what a person reads in a diff: `data[3].session_name`; a key that is not a plain
name is quoted, `metadata["a.b"]`. Its template replaces every index with `[*]`
(`data[*].session_name`) so that metrics labels and rules stay bounded. The HTTP parts of a
response use paths a JSON key cannot produce: `:status` and `:headers.<name>`; `$` is the body.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache

Segment = str | int

ROOT = "$"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*\Z")


def _key(key: str, first: bool) -> str:
    if _NAME.match(key):
        return key if first else "." + key
    return "[" + json.dumps(key, ensure_ascii=False) + "]"


def format_path(segments: Sequence[Segment]) -> str:
    """`["data", 3, "session_name"]` -> `data[3].session_name`."""
    parts = [f"[{s}]" if isinstance(s, int) else _key(s, i == 0) for i, s in enumerate(segments)]
    return "".join(parts) or ROOT


def format_template(segments: Sequence[Segment]) -> str:
    """`["data", 3, "session_name"]` -> `data[*].session_name`."""
    parts = ["[*]" if isinstance(s, int) else _key(s, i == 0) for i, s in enumerate(segments)]
    return "".join(parts) or ROOT


_TOKEN = re.compile(r'\.?([A-Za-z_][A-Za-z0-9_\-]*)|\[(\d+|\*)\]|\[("(?:[^"\\]|\\.)*")\]')

# `[*]` in a template: any index. -1 is never a concrete index, so it cannot be confused with
# a key named "*" (which is written `["*"]`).
ANY_INDEX = -1


def parse_path(path: str) -> list[Segment]:
    """The inverse of `format_path` (and of `format_template`, with `[*]` as `ANY_INDEX`)."""
    if path in ("", ROOT):
        return []
    segments: list[Segment] = []
    pos = 0
    while pos < len(path):
        m = _TOKEN.match(path, pos)
        if m is None or (pos == 0 and path.startswith(".")):
            raise ValueError(f"not a JSON path: {path!r} (at {pos})")
        name, index, quoted = m.groups()
        if name is not None:
            segments.append(name)
        elif quoted is not None:
            segments.append(json.loads(quoted))
        else:
            segments.append(ANY_INDEX if index == "*" else int(index))
        pos = m.end()
    return segments


@lru_cache(maxsize=4096)
def template_of(path: str) -> str:
    """The template of a concrete path; HTTP paths (`:status`, `:headers.x`) are their own."""
    if path.startswith(":") or path == ROOT:
        return path
    return format_template(parse_path(path))


# Regex pieces for one segment of a path or template, as `format_path` writes them.
_NAME_RE = r"[A-Za-z_][A-Za-z0-9_\-]*"
_QUOTED_RE = r'\["(?:[^"\\]|\\.)*"\]'
_INDEX_RE = r"\[(?:\d+|\*)\]"
_FIRST_RE = f"(?:{_NAME_RE}|{_QUOTED_RE}|{_INDEX_RE})"
_NEXT_RE = f"(?:\\.{_NAME_RE}|{_QUOTED_RE}|{_INDEX_RE})"


@lru_cache(maxsize=1024)
def compile_glob(pattern: str, below: bool = True) -> re.Pattern[str]:
    """A rule's path pattern, matched against a difference's template or its concrete path.

    `[*]` is any index, `*` any one key (quoted keys included), `**.` any number of whole
    segments (`**.created_at` finds it at any depth, the top level included). A pattern also
    covers everything below what it names (`data[*].metadata` covers `data[3].metadata.k`)
    unless `below` is false."""
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("[*]", i):
            out.append(_INDEX_RE)
            i += 3
        elif pattern.startswith("**.", i):
            starts_segment = i == 0 or pattern[i - 1] == "."
            out.append(f"(?:{_FIRST_RE if starts_segment else ''}{_NEXT_RE}*\\.)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(f"{_NEXT_RE}*" if i else f"(?:{_FIRST_RE}{_NEXT_RE}*)?")
            i += 2
        elif pattern.startswith(".*", i) and not pattern.startswith(".**", i):
            out.append(f"(?:\\.{_NAME_RE}|{_QUOTED_RE})")
            i += 2
        elif pattern[i] == "*":
            out.append(f"(?:{_NAME_RE}|{_QUOTED_RE})")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("(?:" + "".join(out) + (r")(?:$|[.\[])" if below else r")$"))


def glob_matches(patterns: Iterable[str], path: str, template: str, below: bool = True) -> bool:
    return any(compile_glob(p, below).match(template) or compile_glob(p, below).match(path) for p in patterns)
