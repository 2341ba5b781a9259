"""Deciding whether two HTTP responses to the same request are the same answer.

from comparator import Request, Response, Rules, compare
verdict = compare(Response(200, headers, body_a), Response(200, headers, body_b),
                  Rules.load("config/comparator.yaml"), request=Request("GET", "/sessions"))
verdict.result       # "match" | "mismatch" | "expected" | "error"
verdict.differences  # (Difference(path, kind, primary, shadow), ...)
"""

from .engine import OFFLOAD_BYTES, compare, compare_async, diff_bodies
from .model import ABSENT, KINDS, PASSING, RESULTS, Comparison, Difference, Kind, Request, Response, Result, Side
from .paths import format_path, format_template, parse_path, template_of
from .rules import (
    DEFAULT_RULES,
    PAGE_EDGE_TIE,
    KnownDifference,
    RouteLabeller,
    RouteRules,
    Rules,
    RulesError,
    Sorted,
    Unordered,
    import_labeller,
    load_known_differences,
)

__all__ = [
    "ABSENT",
    "KINDS",
    "OFFLOAD_BYTES",
    "PASSING",
    "RESULTS",
    "DEFAULT_RULES",
    "PAGE_EDGE_TIE",
    "Comparison",
    "Difference",
    "Kind",
    "KnownDifference",
    "Request",
    "Response",
    "Result",
    "RouteLabeller",
    "RouteRules",
    "Rules",
    "RulesError",
    "Side",
    "Sorted",
    "Unordered",
    "compare",
    "compare_async",
    "diff_bodies",
    "format_path",
    "format_template",
    "import_labeller",
    "load_known_differences",
    "parse_path",
    "template_of",
]
