"""The reliability settings: read from the environment, defaults, and bad values refused at
start-up (a ConfigError the CLI reports as exit code 2), never a server with no bound."""

from __future__ import annotations

import pytest

from session_service.config import ConfigError, load_settings

DSN = {"AGNO_PG_DSN": "postgresql://u@127.0.0.1:5432/db"}


def test_defaults() -> None:
    settings = load_settings(DSN)
    assert (settings.idle_timeout_s, settings.max_connections, settings.request_timeout_s) == (15.0, 1000, 60.0)
    assert settings.database_timeout_s == 30.0
    assert settings.jwt is None


def test_values_from_the_environment() -> None:
    env = {**DSN, "AGNO_IDLE_TIMEOUT_S": "7", "AGNO_MAX_CONNECTIONS": "12", "AGNO_REQUEST_TIMEOUT_S": "9"}
    settings = load_settings(env)
    assert (settings.idle_timeout_s, settings.max_connections, settings.database_timeout_s) == (7.0, 12, 4.5)


def test_jwt_mode_from_agnos_variables() -> None:
    settings = load_settings({**DSN, "JWT_VERIFICATION_KEY": "secret-of-32-bytes-at-the-very-least"})
    assert settings.jwt is not None
    assert settings.jwt.verification_keys == ("secret-of-32-bytes-at-the-very-least",)
    assert settings.jwt.algorithm == "RS256"
    assert load_settings({**DSN, "JWT_VERIFICATION_KEY": "k", "AGNO_JWT_ALGORITHM": "HS256"}).jwt.algorithm == "HS256"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AGNO_IDLE_TIMEOUT_S", "0"),
        ("AGNO_IDLE_TIMEOUT_S", "soon"),
        ("AGNO_MAX_CONNECTIONS", "-1"),
        ("AGNO_REQUEST_TIMEOUT_S", "0"),
    ],
)
def test_bad_values_are_refused(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings({**DSN, name: value})
