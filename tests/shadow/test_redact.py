"""Redaction of mismatch samples before they are stored or logged: one test per rule (headers,
always-redacted credentials, body globs at any depth and in list elements, the comparison's
values), plus what must stay untouched (non-JSON bodies, bodies with nothing to redact, the
input sample). Samples are built from real `comparator.compare` verdicts."""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

from comparator import ABSENT, Request, Response, Rules, compare
from comparator.rules import RouteRules
from shadow_proxy.model import Sample
from shadow_proxy.redact import REDACTED, redact_headers, redact_sample

JSON = {"content-type": "application/json"}


def encode(body: Any) -> bytes:
    return body if isinstance(body, bytes) else json.dumps(body, separators=(",", ":")).encode()


def make_sample(
    primary: Any,
    shadow: Any,
    *,
    request_body: Any = b"",
    request_headers: dict[str, str] | None = None,
    primary_headers: dict[str, str] | None = None,
    shadow_headers: dict[str, str] | None = None,
    rules: Rules | None = None,
) -> Sample:
    """A sample of `GET /sessions/s1` whose comparison is the real verdict on the two bodies."""
    request = Request("POST" if request_body else "GET", "/sessions/s1", request_headers or {}, encode(request_body))
    left = Response(200, primary_headers or dict(JSON), encode(primary), "legacy")
    right = Response(200, shadow_headers or dict(JSON), encode(shadow), "native")
    comparison = compare(left, right, rules, request=request)
    return Sample(
        "req-1",
        1_700_000_000.0,
        "GET /sessions/{session_id}",
        "reads",
        "shadow",
        "mirror",
        request,
        left,
        right,
        comparison,
    )


def body_of(response: Response) -> Any:
    return json.loads(response.body)


def differences(sample: Sample) -> dict[str, tuple[Any, Any]]:
    return {d.path: (d.primary, d.shadow) for d in sample.comparison.differences}


# ---- headers -----------------------------------------------------------------------------------


def test_configured_headers_are_redacted_case_insensitively_everywhere():
    """A configured name hides the value in the request and in both responses, whatever its case."""
    sample = make_sample(
        {"a": 1},
        {"a": 2},
        request_headers={"X-Api-Key": "k1", "Accept": "application/json"},
        primary_headers={**JSON, "x-api-key": "k2"},
        shadow_headers={**JSON, "X-API-KEY": "k3"},
    )
    out = redact_sample(sample, ["X-API-Key"], [])
    assert out.request.headers == {"X-Api-Key": REDACTED, "Accept": "application/json"}
    assert out.primary.headers == {**JSON, "x-api-key": REDACTED}
    assert out.shadow.headers == {**JSON, "X-API-KEY": REDACTED}


def test_credentials_are_redacted_even_when_not_configured():
    """Cookie, Set-Cookie and Authorization never reach the store, with an empty configuration."""
    sample = make_sample(
        {"a": 1},
        {"a": 2},
        request_headers={"Authorization": "Bearer t", "Cookie": "sid=1"},
        primary_headers={**JSON, "Set-Cookie": "sid=2"},
        shadow_headers={**JSON, "set-cookie": "sid=3"},
    )
    out = redact_sample(sample, [], [])
    assert out.request.headers == {"Authorization": REDACTED, "Cookie": REDACTED}
    assert out.primary.headers["Set-Cookie"] == REDACTED
    assert out.shadow.headers["set-cookie"] == REDACTED
    assert out.primary.headers["content-type"] == "application/json"


def test_redact_headers_alone():
    """The helper for logging a header dict: configured names and the credentials, a new dict."""
    headers = {"X-Token": "t", "Cookie": "c", "Host": "h"}
    assert redact_headers(headers, ["x-token"]) == {"X-Token": REDACTED, "Cookie": REDACTED, "Host": "h"}
    assert headers == {"X-Token": "t", "Cookie": "c", "Host": "h"}


def test_header_difference_on_a_redacted_header_hides_both_values():
    """A compared header that is redacted must not leak through the comparison's values."""
    rules = Rules(defaults=RouteRules(headers=("content-type", "set-cookie")))
    sample = make_sample(
        {"a": 1}, {"a": 1}, primary_headers={**JSON, "Set-Cookie": "sid=secret"}, shadow_headers=dict(JSON), rules=rules
    )
    assert differences(sample) == {":headers.set-cookie": ("sid=secret", ABSENT)}
    out = redact_sample(sample, [], [])
    assert differences(out) == {":headers.set-cookie": (REDACTED, ABSENT)}


# ---- bodies ------------------------------------------------------------------------------------


def test_nested_path_is_redacted_at_any_depth_in_all_three_bodies():
    """`**.session_state` finds the key at the top level and nested; the subtree goes whole."""
    state = {"token": "s3cr3t", "cart": [1, 2]}
    primary = {"session_state": state, "runs": [{"extra": {"session_state": state}}], "name": "a"}
    shadow = {"session_state": state, "runs": [{"extra": {"session_state": state}}], "name": "b"}
    sample = make_sample(primary, shadow, request_body={"session_state": state, "keep": 1})
    out = redact_sample(sample, [], ["**.session_state"])
    expected = {"session_state": REDACTED, "runs": [{"extra": {"session_state": REDACTED}}]}
    assert body_of(out.primary) == {**expected, "name": "a"}
    assert body_of(out.shadow) == {**expected, "name": "b"}
    assert json.loads(out.request.body) == {"session_state": REDACTED, "keep": 1}
    assert b"s3cr3t" not in out.primary.body + out.shadow.body + out.request.body


def test_list_elements_are_redacted_by_index_glob():
    """`data[*].user_id` hides the field in every element, not a `user_id` elsewhere."""
    primary = {"data": [{"user_id": "u1", "n": 1}, {"user_id": "u2", "n": 2}], "user_id": "top"}
    shadow = {"data": [{"user_id": "u1", "n": 1}, {"user_id": "u2", "n": 3}], "user_id": "top"}
    out = redact_sample(make_sample(primary, shadow), [], ["data[*].user_id"])
    assert body_of(out.primary) == {
        "data": [{"user_id": REDACTED, "n": 1}, {"user_id": REDACTED, "n": 2}],
        "user_id": "top",
    }
    assert body_of(out.shadow)["data"][1] == {"user_id": REDACTED, "n": 3}


def test_redacted_body_is_reencoded_compactly_without_escaping_unicode():
    sample = make_sample({"secret": "x", "name": "café"}, {"secret": "y", "name": "café"})
    out = redact_sample(sample, [], ["secret"])
    assert out.primary.body == '{"secret":"<redacted>","name":"café"}'.encode()


def test_non_json_body_is_kept_as_it_is():
    """No structure, no paths: the bytes stay (headers are still redacted)."""
    sample = make_sample(b"plain secret text", b"other text", primary_headers={"Cookie": "c"})
    out = redact_sample(sample, [], ["**.secret", "secret"])
    assert out.primary.body == b"plain secret text"
    assert out.shadow.body == b"other text"
    assert out.primary.headers == {"Cookie": REDACTED}


def test_body_with_nothing_to_redact_keeps_its_bytes():
    """Re-encoding would erase spacing that may be the very difference being looked at."""
    sample = make_sample(b'{"a": 1}', b'{"a":1}')
    out = redact_sample(sample, [], ["**.session_state"])
    assert (out.primary.body, out.shadow.body) == (b'{"a": 1}', b'{"a":1}')
    assert out.comparison == sample.comparison


# ---- the comparison ----------------------------------------------------------------------------


def test_difference_at_a_redacted_path_hides_its_values():
    sample = make_sample({"data": [{"user_id": "u1"}]}, {"data": [{"user_id": "u2"}]})
    assert differences(sample) == {"data[0].user_id": ("u1", "u2")}
    out = redact_sample(sample, [], ["data[*].user_id"])
    assert differences(out) == {"data[0].user_id": (REDACTED, REDACTED)}


def test_difference_below_a_redacted_path_is_covered():
    """A glob covers everything below what it names, in the comparison as in the body."""
    sample = make_sample({"session_state": {"k": {"token": "a"}}}, {"session_state": {"k": {"token": "b"}}})
    assert list(differences(sample)) == ["session_state.k.token"]
    out = redact_sample(sample, [], ["**.session_state"])
    assert differences(out) == {"session_state.k.token": (REDACTED, REDACTED)}


def test_absent_side_stays_absent():
    """A `missing`/`extra` difference keeps its kind readable: only the present value is hidden."""
    sample = make_sample({"session_state": {"token": "a"}}, {})
    [difference] = sample.comparison.differences
    assert (difference.kind, difference.shadow) == ("missing", ABSENT)
    out = redact_sample(sample, [], ["**.session_state"])
    [redacted] = out.comparison.differences
    assert (redacted.kind, redacted.primary, redacted.shadow) == ("missing", REDACTED, ABSENT)
    assert "shadow" not in redacted.to_dict()


def test_difference_whose_value_contains_a_redacted_path_is_redacted_inside():
    """An extra list element carries the whole object: its secret field is hidden, the rest kept."""
    sample = make_sample(
        {"data": [{"user_id": "u1", "n": 1}]}, {"data": [{"user_id": "u1", "n": 1}, {"user_id": "u2", "n": 2}]}
    )
    out = redact_sample(sample, [], ["data[*].user_id"])
    values = differences(out)
    assert values["data[1]"] == (ABSENT, {"user_id": REDACTED, "n": 2})
    assert "u2" not in json.dumps(out.to_dict())


def test_body_excerpt_difference_is_hidden_when_the_bodies_had_secrets():
    """A `$` difference (same values, other bytes) quotes raw text, which paths cannot redact."""
    sample = make_sample(b'{"secret": "x"}', b'{"secret":"x"}')
    assert [d.path for d in sample.comparison.differences] == ["$"]
    out = redact_sample(sample, [], ["secret"])
    assert differences(out) == {"$": (REDACTED, REDACTED)}


def test_noise_differences_are_redacted_too():
    """Noise is stored with the sample as well, so it obeys the same rules."""
    sample = make_sample({"user_id": "u1"}, {"user_id": "u2"})
    noisy = dataclasses.replace(
        sample, comparison=dataclasses.replace(sample.comparison, noise=sample.comparison.differences)
    )
    out = redact_sample(noisy, [], ["user_id"])
    assert [(d.primary, d.shadow) for d in out.comparison.noise] == [(REDACTED, REDACTED)]


def test_input_sample_is_not_mutated():
    sample = make_sample(
        {"session_state": {"t": 1}, "x": 1},
        {"session_state": {"t": 2}, "x": 2},
        request_body={"session_state": 1},
        request_headers={"Cookie": "c"},
    )
    before = copy.deepcopy(sample.to_dict())
    out = redact_sample(sample, ["x-any"], ["**.session_state"])
    assert sample.to_dict() == before
    assert out is not sample and out.to_dict() != before
    assert (out.request_id, out.at, out.route, out.group, out.stage, out.origin) == (
        sample.request_id,
        sample.at,
        sample.route,
        sample.group,
        sample.stage,
        sample.origin,
    )
