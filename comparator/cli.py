"""`agentos-session compare A B` and `agentos-session learn-noise`.

compare: A and B are JSON files (bodies) or URLs; for URLs the same method, headers and body go
to both. Exit status 0 for match or expected, 1 for mismatch, 2 for an error (a side failed, a
body is not JSON, a file or rules file cannot be read).

learn-noise: send each request twice to one side (or read recorded same-side pairs), count the
paths that differ by themselves, save the `NoiseModel` and print proposed ignore rules. It never
changes a rules file.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

from .engine import compare
from .fetch import UrlTarget
from .model import SIDES, Comparison, Request, Response, Result
from .noise import NoiseModel, Thresholds, proposals_yaml
from .report import render_text
from .rules import SESSIONS_LABEL, Rules, RulesError, import_labeller

EXIT: dict[Result, int] = {"match": 0, "expected": 0, "mismatch": 1, "error": 2}


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "compare",
        help="compare two JSON responses (files or URLs)",
        description="Compare two answers. Exit 0 match/expected, 1 mismatch, 2 error.",
    )
    p.add_argument("a", help="primary: a JSON file (the body) or a URL")
    p.add_argument("b", help="shadow: a JSON file (the body) or a URL")
    add_rules_option(p, "comparator rules YAML, with the known differences it names")
    _add_route_label(p)
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")
    p.add_argument("-X", "--method", default="GET", help="HTTP method for URLs (default GET)")
    add_header_option(p, "request header, repeatable")
    p.add_argument("-d", "--data", help="request body for URLs (@FILE reads a file)")
    p.add_argument(
        "--request", help="for files: the request they answer, e.g. 'GET /sessions/abc' (selects route rules)"
    )
    add_primary_option(p, "--primary-side", "which side A is, for known differences (default legacy)")
    add_color_option(p, "color the diff")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per URL request")
    p.set_defaults(run=run_compare)

    n = sub.add_parser(
        "learn-noise",
        help="learn which paths differ between two answers of the same side",
        description=__doc__.split("learn-noise: ", 1)[1].strip(),
    )
    source = n.add_mutually_exclusive_group(required=True)
    source.add_argument("--base", help="base URL of one side (e.g. the legacy AgentOS)")
    source.add_argument("--pairs", help="JSONL of recorded same-side pairs: {request, a, b} per line")
    n.add_argument("--requests", help="with --base: file of requests, one per line ('GET /sessions?limit=5' or JSON)")
    n.add_argument("--repeat", type=int, default=3, help="with --base: pairs per request (default 3)")
    add_header_option(n, "with --base: request header, repeatable")
    add_rules_option(n, "rules YAML: paths it already ignores are not proposed again")
    _add_route_label(n)
    n.add_argument("--model", help="write the NoiseModel here (YAML); extends it if it exists")
    n.add_argument("--out", help="write the proposed rules here instead of stdout")
    n.add_argument(
        "--min-samples",
        type=int,
        default=Thresholds.min_samples,
        help="pairs a route needs before anything is proposed",
    )
    n.add_argument(
        "--min-rate", type=float, default=0.0, help="propose paths that differed in more than this share of pairs"
    )
    n.set_defaults(run=run_learn_noise)


# ---- compare ---------------------------------------------------------------------------------


def _is_url(text: str) -> bool:
    return urlsplit(text).scheme in ("http", "https")


def _split_url(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    target = urlunsplit(("", "", parts.path or "/", parts.query, ""))
    return urlunsplit((parts.scheme, parts.netloc, "", "", "")), target


def parse_headers(items: Iterable[str]) -> dict[str, str]:
    headers = {}
    for item in items:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise ValueError(f"header {item!r} is not 'NAME: VALUE'")
        headers[name.strip()] = value.strip()
    return headers


def _body_arg(data: str | None) -> bytes:
    if data is None:
        return b""
    if data.startswith("@"):
        return Path(data[1:]).read_bytes()
    return data.encode()


def _file_response(path: str, side: Any) -> Response:
    return Response(200, {"content-type": "application/json"}, Path(path).read_bytes(), side)


def add_rules_option(parser: argparse.ArgumentParser, help: str) -> None:
    """`--rules FILE`, left unset: `agentos-session` fills in the shipped rules (its defaults)."""
    parser.add_argument("--rules", metavar="FILE", help=help + " (default: %(default)s)")


def add_header_option(parser: argparse.ArgumentParser, help: str) -> None:
    """`-H/--header 'NAME: VALUE'`, repeatable (read with `parse_headers`)."""
    parser.add_argument("-H", "--header", action="append", default=[], metavar="'NAME: VALUE'", help=help)


def add_primary_option(parser: argparse.ArgumentParser, flag: str, help: str) -> None:
    """Which side played the primary (`legacy` unless told): what known differences are read by."""
    parser.add_argument(flag, choices=SIDES, default="legacy", help=help)


def add_color_option(parser: argparse.ArgumentParser, help: str) -> None:
    """`--color auto|always|never` (decided with `use_color`)."""
    parser.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help=help + ": auto (a terminal without NO_COLOR), always or never",
    )


def _add_route_label(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--route-label",
        default=SESSIONS_LABEL,
        metavar="MODULE:FUNCTION",
        help="names the route of a request the rules do not name, as a function of (method, path) "
        f"(default {SESSIONS_LABEL}; 'none': only the rules' own routes)",
    )


def load_rules(args: argparse.Namespace) -> Rules:
    """`--rules` (or the built-in defaults), labelling routes with `--route-label`."""
    label = import_labeller(getattr(args, "route_label", SESSIONS_LABEL))
    return Rules.load(args.rules, label=label) if args.rules else Rules(label=label)


async def _fetch_both(
    a: str, b: str, request_a: Request, request_b: Request, timeout: float, sides: tuple[Any, Any]
) -> tuple[Response, Response]:
    targets = [UrlTarget(_split_url(a)[0], timeout, sides[0]), UrlTarget(_split_url(b)[0], timeout, sides[1])]
    try:
        ra, rb = await asyncio.gather(targets[0].send(request_a), targets[1].send(request_b))
    finally:
        for target in targets:
            await target.close()
    return ra, rb


def use_color(choice: str, stream: TextIO) -> bool:
    if choice != "auto":
        return choice == "always"
    return stream.isatty() and not os.environ.get("NO_COLOR")


def run_compare(args: argparse.Namespace, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr  # looked up now: redirections apply
    sides = (args.primary_side, "native" if args.primary_side == "legacy" else "legacy")
    try:
        rules = load_rules(args)
        headers = parse_headers(args.header)
        body = _body_arg(args.data)
        if _is_url(args.a) != _is_url(args.b):
            raise ValueError("give two URLs or two files, not one of each")
        request: Request | None
        if _is_url(args.a):
            request = Request(args.method.upper(), _split_url(args.a)[1], headers, body)
            request_b = Request(args.method.upper(), _split_url(args.b)[1], headers, body)
            primary, shadow = asyncio.run(_fetch_both(args.a, args.b, request, request_b, args.timeout, sides))
        else:
            request = Request.parse(args.request) if args.request else None
            primary, shadow = _file_response(args.a, sides[0]), _file_response(args.b, sides[1])
    except (OSError, ValueError, RulesError) as exc:
        print(f"agentos-session compare: {exc}", file=stderr)
        return EXIT["error"]
    comparison = compare(primary, shadow, rules, request=request)
    _print(comparison, request, args.json, use_color(args.color, stdout), stdout)
    return EXIT[comparison.result]


def _print(comparison: Comparison, request: Request | None, as_json: bool, color: bool, out: TextIO) -> None:
    if as_json:
        data = comparison.to_dict()
        if request is not None:
            data["request"] = str(request)
        print(json.dumps(data, indent=2, ensure_ascii=False, default=str), file=out)
    else:
        print(render_text(comparison, request, color, "A", "B"), file=out)


# ---- learn-noise -----------------------------------------------------------------------------


def read_requests(path: str) -> list[Request]:
    """One request per line: `METHOD /target` or a JSON object; blank lines and # comments skipped."""
    lines = Path(path).read_text().splitlines()
    return [Request.parse(line) for line in lines if line.strip() and not line.lstrip().startswith("#")]


def read_pairs(path: str) -> list[tuple[Request, Response, Response]]:
    out = []
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            request = (
                Request.parse(item["request"])
                if isinstance(item["request"], str)
                else Request.from_dict(item["request"])
            )
            out.append((request, Response.from_dict(item["a"]), Response.from_dict(item["b"])))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: not a pair ({exc!r})") from exc
    return out


async def _same_side_pairs(
    base: str, requests: list[Request], repeat: int, timeout: float = 30.0
) -> list[tuple[Request, Response, Response]]:
    target = UrlTarget(base, timeout)
    pairs = []
    try:
        for request in requests:
            for _ in range(repeat):
                first = await target.send(request)
                second = await target.send(request)
                pairs.append((request, first, second))
    finally:
        await target.close()
    return pairs


def learn(pairs: Iterable[tuple[Request, Response, Response]], rules: Rules, model: NoiseModel) -> NoiseModel:
    """Feed same-side pairs to the model. Rules apply first: what they already ignore is not
    noise to learn. Pairs where a side failed are skipped (they say nothing about paths)."""
    for request, a, b in pairs:
        comparison = compare(a, b, rules, request=request)
        if comparison.result != "error":
            model.observe_noise(comparison)
    return model


def run_learn_noise(args: argparse.Namespace, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    try:
        rules = load_rules(args)
        if args.base:
            if not args.requests:
                raise ValueError("--base needs --requests FILE")
            headers = parse_headers(args.header)
            requests = [
                Request(r.method, r.target, {**headers, **r.headers}, r.body) for r in read_requests(args.requests)
            ]
            pairs = asyncio.run(_same_side_pairs(args.base, requests, args.repeat))
            source = f"{len(pairs)} pairs from {args.base}"
        else:
            pairs = read_pairs(args.pairs)
            source = f"{len(pairs)} pairs from {args.pairs}"
        model = NoiseModel.load(args.model) if args.model and Path(args.model).exists() else NoiseModel()
    except (OSError, ValueError, RulesError) as exc:
        print(f"agentos-session learn-noise: {exc}", file=stderr)
        return 2
    model.thresholds = dataclasses.replace(model.thresholds, min_samples=args.min_samples)
    learn(pairs, rules, model)
    if args.model:
        model.save(args.model)
    proposals = model.proposals(args.min_rate)
    text = proposals_yaml(proposals, source)
    if args.out:
        Path(args.out).write_text(text)
    else:
        stdout.write(text)
    counts = ", ".join(f"{route}: {c.pairs}" for route, c in sorted(model.noise.items())) or "none"
    print(f"learn-noise: {source}; same-side pairs per route: {counts}; {len(proposals)} proposal(s)", file=stderr)
    return 0
