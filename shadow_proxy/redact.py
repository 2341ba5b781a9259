"""Redaction of a `Sample` before it is stored or logged: mismatch samples outlive the request
(they sit in `shadow_mismatches` for days and are shown on the report page), so secrets and
personal data must be gone before anything keeps them.

Pure functions, nothing mutated: the caller gets a new `Sample` and may still use the original
(for example to answer the client). What is redacted:

- headers named in the configuration (case-insensitive), and always `Cookie`, `Set-Cookie` and
  `Authorization`, in the request and in both responses;
- in JSON bodies (the request's and both responses'), every value at a path that a redact glob
  names (comparator globs: `**.session_state`, `data[*].user_id`, everything below included);
- the same values where they reappear in the comparison: a difference at (or below) a redacted
  path, a difference whose value contains one, and a difference on a redacted header.

Non-JSON bodies are kept as they are: there is no structure to find the paths in.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from comparator import ABSENT, Comparison, Difference, Request, Response
from comparator.paths import ROOT, Segment, format_path, format_template, glob_matches, parse_path

from .model import Sample

REDACTED = "<redacted>"

# Credentials that are never worth keeping, whatever the configuration says.
ALWAYS_REDACTED_HEADERS: frozenset[str] = frozenset({"authorization", "cookie", "set-cookie"})

_HEADER_PATH = ":headers."


def _header_names(names: Iterable[str]) -> frozenset[str]:
    return frozenset(n.lower() for n in names) | ALWAYS_REDACTED_HEADERS


def redact_headers(mapping: Mapping[str, str], names: Iterable[str]) -> dict[str, str]:
    """A copy of `mapping` with the values of `names` (case-insensitive) and of the always
    redacted credentials replaced, so a header dict can be logged safely on its own too."""
    redacted = _header_names(names)
    return {key: REDACTED if key.lower() in redacted else value for key, value in mapping.items()}


def redact_value(value: Any, patterns: Sequence[str], prefix: Sequence[Segment] = ()) -> Any:
    """`value` (found at `prefix` in a JSON body) with every part a glob names replaced.

    Walks top-down and stops at the first match: a glob covers everything below what it names,
    so the whole subtree goes. The root itself is never matched (a body is not a value)."""
    segments = list(prefix)
    if segments and glob_matches(patterns, format_path(segments), format_template(segments)):
        return REDACTED
    if isinstance(value, dict):
        return {key: redact_value(item, patterns, [*segments, key]) for key, item in value.items()}
    if isinstance(value, list):
        return [redact_value(item, patterns, [*segments, index]) for index, item in enumerate(value)]
    return value


def redact_body(body: bytes, patterns: Sequence[str]) -> bytes:
    """The body with redacted values, re-encoded compactly; unchanged bytes when it is not JSON
    or when nothing in it is redacted (so a byte-level `order` difference stays readable)."""
    if not body or not patterns:
        return body
    try:
        parsed = json.loads(body)
    except ValueError:
        return body
    redacted = redact_value(parsed, patterns)
    if redacted == parsed:
        return body
    return json.dumps(redacted, separators=(",", ":"), ensure_ascii=False).encode()


def _redact_response(response: Response, headers: frozenset[str], patterns: Sequence[str]) -> Response:
    return dataclasses.replace(
        response, headers=redact_headers(response.headers, headers), body=redact_body(response.body, patterns)
    )


def _redact_request(request: Request, headers: frozenset[str], patterns: Sequence[str]) -> Request:
    return dataclasses.replace(
        request, headers=redact_headers(request.headers, headers), body=redact_body(request.body, patterns)
    )


def _hide(value: Any) -> Any:
    """ABSENT stays ABSENT: that a side had nothing at the path is not a secret, and it keeps
    the difference's kind (`missing`/`extra`) meaningful."""
    return value if value is ABSENT else REDACTED


def _segments(path: str) -> list[Segment] | None:
    try:
        return parse_path(path)
    except ValueError:
        return None


def redact_difference(
    difference: Difference, headers: frozenset[str], patterns: Sequence[str], bodies_changed: bool
) -> Difference:
    """One difference with its values redacted as the bodies and headers they came from."""
    path = difference.path
    hide = False
    if path.startswith(_HEADER_PATH):
        hide = path[len(_HEADER_PATH) :].lower() in headers
    elif path == ROOT:
        # `$` differences carry raw excerpts of both bodies: when the bodies had anything
        # redacted the excerpts may show it, and they cannot be redacted by path.
        hide = bodies_changed
    elif not path.startswith(":") and patterns:
        hide = glob_matches(patterns, path, difference.template)
        segments = _segments(path)
        if not hide and segments is not None:
            return dataclasses.replace(
                difference,
                primary=_walk(difference.primary, patterns, segments),
                shadow=_walk(difference.shadow, patterns, segments),
            )
    if not hide:
        return difference
    return dataclasses.replace(difference, primary=_hide(difference.primary), shadow=_hide(difference.shadow))


def _walk(value: Any, patterns: Sequence[str], segments: Sequence[Segment]) -> Any:
    return value if value is ABSENT else redact_value(value, patterns, segments)


def _redact_comparison(
    comparison: Comparison, headers: frozenset[str], patterns: Sequence[str], bodies_changed: bool
) -> Comparison:
    def each(differences: Iterable[Difference]) -> tuple[Difference, ...]:
        return tuple(redact_difference(d, headers, patterns, bodies_changed) for d in differences)

    return dataclasses.replace(comparison, differences=each(comparison.differences), noise=each(comparison.noise))


def redact_sample(sample: Sample, headers: Iterable[str], paths: Iterable[str]) -> Sample:
    """A copy of `sample` fit to be stored or logged (see the module docstring for the rules).
    `headers` are header names (`store.redact_headers`), `paths` comparator globs
    (`store.redact_paths`)."""
    names = _header_names(headers)
    patterns = tuple(paths)
    request = _redact_request(sample.request, names, patterns)
    primary = _redact_response(sample.primary, names, patterns)
    shadow = _redact_response(sample.shadow, names, patterns)
    bodies_changed = (request.body, primary.body, shadow.body) != (
        sample.request.body,
        sample.primary.body,
        sample.shadow.body,
    )
    comparison = _redact_comparison(sample.comparison, names, patterns, bodies_changed)
    return dataclasses.replace(sample, request=request, primary=primary, shadow=shadow, comparison=comparison)
