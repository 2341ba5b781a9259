"""A seeded generator of sessions-API operations for the differential fuzzer.

Everything random comes from one `random.Random(seed)`, so a seed names one exact sequence of
requests (and a finding can be replayed from its seed and index). Values are drawn from the
seeded data (tests/legacy/seed.py: ids, users, runs, components) and from boundary and hostile
pools. Paths and query strings are produced already percent-encoded, byte for byte, so that
ids with a newline, a NUL or invalid UTF-8 reach both servers exactly as written (httpx keeps
existing escapes).

Pure: no I/O. `runner.py` sends what this module generates.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from tests.legacy import seed

# ---- value pools -------------------------------------------------------------------------------
# Raw (already percent-encoded) strings: `%FF` is a byte that is not UTF-8, `%ED%A0%80` a
# UTF-8-encoded lone surrogate, `%C0%80` an overlong NUL.
HOSTILE_RAW = ["%00", "%0A", "a%0Ab", "%0D%0A", "%FF", "%ED%A0%80", "%C0%80", "%09", "%1A", "%EF%BF%BE", "%25", "%"]

SEEDED_IDS = [*seed.SESSION_ORDER, seed.S_SECOND_1]
RUN_IDS = list(seed.RUN_IDS.values())
USERS = sorted({u for u in seed.SESSION_USERS.values() if u}) + ["nope"]
COMPONENTS = ["basic-agent", "basic-team", "basic-workflow", "nope"]
TEXT = ["", "x", "Zoë", "東京 ✓", " ", "a b", "%", "_", "'", '"', "\\", "<script>", "🙂", "Session", "é" * 3]
NUMBERS = ["0", "1", "2", "3", "20", "-1", "1.0", "1.5", "1e2", "+1", " 1", "01", "abc", "", "99999999999999999999"]
NUMBERS += ["٣", "１", "1_0", "0x10", "true", "nan", "inf", "-0"]
SORT_COLUMNS = ["session_id", "session_type", "agent_id", "team_id", "workflow_id", "user_id", "session_data"]
SORT_COLUMNS += ["agent_data", "team_data", "workflow_data", "metadata", "runs", "summary", "created_at", "updated_at"]
SORT_OTHER = ["", "x", "CREATED_AT", "keys", "items", "c", "columns", "_data", "__class__", "__dict__", "primary_key"]
SORT_OTHER += ["foreign_keys", "name", "table", "schema", "indexes", "comment", "description", "_columns", "__doc__"]
TYPES = ["agent", "team", "workflow", "", "AGENT", "bad"]
ORDERS = ["asc", "desc", "", "ASC", "x"]
STATUSES = ["COMPLETED", "completed", "ERROR", "error", "RUNNING", "cancelled", "foo", ""]
TIMES = [str(seed.BASE_TS + d) for d in (-(10**6), 0, 300, 480, 490, 10**6)] + ["0", "-1", "abc", "1.5", "1e9", ""]
# Control characters agno strips from stored strings, plus those it keeps.
CONTROL = [chr(c) for c in range(0x20)] + ["\x7f", "\ufffe", "\uffff", "\u2028", "\ud800", "\udfff"]


def enc(text: str) -> str:
    """Percent-encode one value (UTF-8; a lone surrogate is sent as its escaped UTF-8 bytes)."""
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


@dataclass
class Op:
    """One operation: a read (sent identically to both sides) or a twin write."""

    kind: str  # "read" or one of WRITES
    method: str
    path: str  # with query string, percent-encoded; "{id}" stands for the twin's id in writes
    body: bytes | None = None
    content_type: str | None = "application/json"
    twin: int | None = None  # index of the twin a write targets
    notes: dict[str, Any] = field(default_factory=dict)


WRITES = ("create", "rename", "patch", "delete", "bulk_delete")


class Generator:
    def __init__(self, seed_value: int) -> None:
        self.r = random.Random(seed_value)
        self.twins = 0  # how many twins `create` has named so far
        self.suffixes: list[str] = []  # each twin's id suffix (hostile characters in stored ids)

    # ---- scalars -------------------------------------------------------------------------

    def pick(self, *pools: list[str]) -> str:
        return self.r.choice(self.r.choice(pools))

    def raw_value(self, *pools: list[str]) -> str:
        """A query value, percent-encoded: from the pools, or hostile."""
        if self.r.random() < 0.15:
            return self.r.choice(HOSTILE_RAW)
        if self.r.random() < 0.03:
            return "x" * self.r.choice([300, 3000, 9000])
        return enc(self.pick(*pools))

    def text(self) -> str:
        """A string for a body: plain, unicode, control characters, or big."""
        roll = self.r.random()
        if roll < 0.35:
            return self.r.choice(TEXT)
        if roll < 0.75:
            parts = [self.r.choice(TEXT + CONTROL + CONTROL) for _ in range(self.r.randint(1, 5))]
            return "".join(parts)
        if roll < 0.8:
            return "b" * self.r.choice([1000, 70000])
        return f"t{self.r.randint(0, 999)}"

    def number(self) -> Any:
        return self.r.choice([0, 1, -1, 2**53 + 1, 10**30, 1.5, -0.0, 1e-7, 1e308, _Raw("1e400"), _Raw("-1e400")])

    def json_value(self, depth: int = 0) -> Any:
        roll = self.r.random()
        if depth > 3 or roll < 0.4:
            return self.r.choice([self.text, self.number, lambda: None, lambda: self.r.random() < 0.5])()
        if roll < 0.7:
            return {self.text(): self.json_value(depth + 1) for _ in range(self.r.randint(0, 3))}
        return [self.json_value(depth + 1) for _ in range(self.r.randint(0, 3))]

    def json_object(self) -> Any:
        """Mostly an object; sometimes a wrong type, NaN/Infinity or deep nesting."""
        roll = self.r.random()
        if roll < 0.06:
            return self.r.choice([_Raw("NaN"), _Raw("Infinity"), _Raw("-Infinity"), _Raw("1e400")])
        if roll < 0.1:
            return {"x": self.r.choice([_Raw("NaN"), _Raw("Infinity"), _Raw("1e400")])}
        if roll < 0.14:
            return _Raw(nested(self.r.choice([50, 255, 300, 400, 1000])))
        if roll < 0.2:
            return self.r.choice(["s", 1, [], [1], True])
        return {self.text(): self.json_value(1) for _ in range(self.r.randint(0, 4))}

    # ---- operations ----------------------------------------------------------------------

    def op(self) -> Op:
        if self.twins == 0 or self.r.random() < 0.18:
            return self.create()
        roll = self.r.random()
        if roll < 0.7:
            return self.read()
        return self.r.choice([self.rename, self.patch, self.patch, self.delete, self.bulk_delete, self.create])()

    def query(self, params: dict[str, tuple[list[str], ...]], many: tuple[str, ...] = ()) -> str:
        parts = []
        for name, pools in params.items():
            if self.r.random() < 0.35:
                for _ in range(self.r.choice([1, 1, 1, 2]) if name in many else 1):
                    parts.append(f"{name}={self.raw_value(*pools)}")
        if self.r.random() < 0.05:
            parts.append(f"{self.r.choice(['unknown', 'LIMIT', 'type'])}={self.raw_value(TEXT)}")
        self.r.shuffle(parts)
        return ("?" + "&".join(parts)) if parts else ""

    def session_id(self) -> str:
        roll = self.r.random()
        if roll < 0.7:
            return enc(self.r.choice(SEEDED_IDS))
        if roll < 0.85:
            return self.r.choice(HOSTILE_RAW) + self.r.choice(["", "x"])
        return enc(self.r.choice(["nope", "ünïcode", "a/b", "x" * 300, ".", "s-agent-1 "]))

    def read(self) -> Op:
        detail = {"type": (TYPES,), "user_id": (USERS, TEXT), "db_id": (["main-db", "x", ""],), "table": (["", "x"],)}
        route = self.r.choice(["list", "list", "list", "detail", "runs", "previews", "run"])
        if route == "list":
            params = {
                "type": (TYPES,),
                "component_id": (COMPONENTS, TEXT),
                "user_id": (USERS, TEXT),
                "session_name": (TEXT,),
                "limit": (NUMBERS,),
                "page": (NUMBERS,),
                "sort_by": (SORT_COLUMNS, SORT_OTHER),
                "sort_order": (ORDERS,),
                "db_id": (["main-db", "second-db", "x", ""],),
                "table": (["", "agno_sessions", "x"],),
            }
            return Op("read", "GET", "/sessions" + self.query(params))
        sid = self.session_id()
        if route == "detail":
            return Op("read", "GET", f"/sessions/{sid}" + self.query(detail))
        if route == "run":
            run = enc(self.r.choice(RUN_IDS)) if self.r.random() < 0.7 else self.r.choice(HOSTILE_RAW + ["nope"])
            return Op("read", "GET", f"/sessions/{sid}/runs/{run}" + self.query(detail))
        runs = {
            **detail,
            "created_after": (TIMES,),
            "created_before": (TIMES,),
            "status": (STATUSES,),
        }
        tail = "runs" if route == "runs" else "run-previews"
        return Op("read", "GET", f"/sessions/{sid}/{tail}" + self.query(runs, many=("status",)))

    def body(self, fields: dict[str, Any]) -> bytes | None:
        """A JSON body for `fields`, or sometimes a broken one."""
        roll = self.r.random()
        if roll < 0.03:
            return None
        if roll < 0.06:
            return self.r.choice([b"", b"{", b"[]", b"null", b"\xff\xfe", b'{"a":1,}', b"1e400"])
        if roll < 0.08:
            return nested(10_000).encode()
        return dumps(fields).encode()

    def twin_query(self, params: tuple[str, ...]) -> str:
        pools = {"type": (TYPES,), "user_id": (USERS, TEXT), "db_id": (["main-db", "x"],), "table": (["", "x"],)}
        pools["delete_media"] = (["false", "true", "0", "x"],)
        return self.query({p: pools[p] for p in params})

    def create(self) -> Op:
        self.twins += 1
        fields: dict[str, Any] = {}
        for key in ("session_name", "user_id", "agent_id", "team_id", "workflow_id"):
            if self.r.random() < 0.4:
                fields[key] = self.text() if self.r.random() < 0.9 else self.r.choice([None, 1, [], {}])
        for key in ("session_state", "metadata"):
            if self.r.random() < 0.5:
                fields[key] = self.json_object() if self.r.random() < 0.95 else None
        if self.r.random() < 0.05:
            fields[self.text()] = self.json_value()
        # The twin id goes in unless the body is broken; a hostile suffix tests stored ids.
        suffix = self.r.choice(["", "", "", "", "\n", "\x00", "\ud800", " x", "ü"])
        self.suffixes.append(suffix)
        fields = {"session_id": _TwinId(suffix), **fields}
        query = self.query({"type": (TYPES,), "db_id": (["main-db", "x"],)})
        return Op("create", "POST", "/sessions" + query, self.body(fields), twin=self.twins - 1)

    def twin(self) -> int:
        return self.r.randrange(self.twins)

    def rename(self) -> Op:
        name: Any = self.text() if self.r.random() < 0.85 else self.r.choice([None, 1, [], {"a": 1}])
        body = self.body({"session_name": name} if self.r.random() < 0.95 else {})
        return Op(
            "rename", "POST", "/sessions/{id}/rename" + self.twin_query(("type", "user_id")), body, twin=self.twin()
        )

    def patch(self) -> Op:
        fields: dict[str, Any] = {}
        if self.r.random() < 0.5:
            fields["session_name"] = self.text() if self.r.random() < 0.9 else self.r.choice([None, 2])
        for key in ("session_state", "metadata"):
            if self.r.random() < 0.45:
                fields[key] = self.json_object()
        if self.r.random() < 0.2:
            fields["summary"] = self.r.choice(
                [{"summary": self.text()}, {"summary": "s", "topics": [self.text()]}, {"topics": []}, None]
            )
        return Op(
            "patch",
            "PATCH",
            "/sessions/{id}" + self.twin_query(("type", "user_id")),
            self.body(fields),
            twin=self.twin(),
        )

    def delete(self) -> Op:
        return Op("delete", "DELETE", "/sessions/{id}" + self.twin_query(("user_id", "delete_media")), twin=self.twin())

    def bulk_delete(self) -> Op:
        n = self.r.choice([0, 1, 1, 1, 2])
        types = [self.r.choice(["agent", "team", "workflow", "bad"]) for _ in range(self.r.choice([n, n, n + 1]))]
        twin = self.twin()
        body = self.body({"session_ids": [_TwinId(self.suffixes[twin]) for _ in range(n)], "session_types": types})
        return Op("bulk_delete", "DELETE", "/sessions" + self.twin_query(("user_id",)), body, twin=twin)


# ---- JSON with literals json.dumps cannot write -----------------------------------------------


class _Raw(str):
    """A JSON fragment written verbatim (`NaN`, `1e400`, deep nesting)."""


class _TwinId(str):
    """The twin's id (`L-...`/`N-...`) plus this suffix; filled in per side by the runner."""


def nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


TWIN_MARK = "\u0001TWIN\u0001"


def dumps(value: Any) -> str:
    """json.dumps, with `_Raw` fragments verbatim and `_TwinId` as `TWIN_MARK + suffix`."""
    raws: list[str] = []

    def default(obj: Any) -> Any:  # pragma: no cover - json calls it only for unknown types
        raise TypeError(obj)

    def walk(v: Any) -> Any:
        if isinstance(v, _TwinId):
            return TWIN_MARK + str(v)
        if isinstance(v, _Raw):
            raws.append(str(v))
            return f"\u0002RAW{len(raws) - 1}\u0002"
        if isinstance(v, dict):
            return {str(k) if not isinstance(k, _TwinId) else k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    text = json.dumps(walk(value), default=default)
    for i, raw in enumerate(raws):
        text = text.replace(f'"\\u0002RAW{i}\\u0002"', raw)
    return text
