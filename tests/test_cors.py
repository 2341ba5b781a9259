"""Which origins the native service allows, from the same settings AgentOS reads."""

from __future__ import annotations

from session_service.cors import AGNO_ORIGINS, policy_from_env


def test_default_is_agnos_domains() -> None:
    policy = policy_from_env({})
    assert policy.origins == AGNO_ORIGINS and policy.allows("https://os.agno.com") and not policy.allows("https://x.io")


def test_cors_origin_list_adds_to_the_agno_domains_and_star_is_dropped() -> None:
    policy = policy_from_env({"CORS_ORIGIN_LIST": '["https://my.app", "*"]'})
    assert policy.origins == ("https://my.app", *AGNO_ORIGINS)
    assert policy_from_env({"CORS_ORIGIN_LIST": "https://a.io, https://b.io"}).origins[:2] == (
        "https://a.io",
        "https://b.io",
    )


def test_explicit_origins_replace_the_defaults_and_a_regex_adds() -> None:
    policy = policy_from_env(
        {"AGNO_CORS_ORIGINS": "https://only.io", "AGNO_CORS_ORIGIN_REGEX": r"https://.*\.corp\.io"}
    )
    assert policy.origins == ("https://only.io",)
    assert policy.allows("https://ui.corp.io") and not policy.allows("https://os.agno.com")
    assert not policy.allows("https://ui.corp.io.evil.com")  # the whole origin must match
