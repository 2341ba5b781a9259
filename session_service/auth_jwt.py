"""agno AgentOS's JWT mode (`AgentOS(authorization=True)`) for the sessions routes.

Configured by agno's own environment variables: `JWT_VERIFICATION_KEY` (a PEM public key, or a
shared secret for an HMAC algorithm) and/or `JWT_JWKS_FILE` (a static JWKS file). With either
set, the service verifies bearer tokens as agno 3.1.10's `JWTValidator` and `AuthMiddleware` do
(agno/os/middleware/jwt.py) and checks agno's default scopes for the sessions routes
(agno/os/scopes.py): `sessions:read`, `sessions:write`, `sessions:delete`, or `agent_os:admin`
for everything. The answers are agno's, byte for byte (tests/reliability/test_jwt.py compares
them with a real AgentOS configured the same way):

* no token: 401 `Authorization header missing`;
* a token that does not verify: 401 `Invalid token: <PyJWT's reason>`, `Token has expired`,
  `Invalid token subject` (a `sub` in a reserved namespace: `sa:`, `__oauth__:`, `__scheduler__`),
  `Error decoding token: <reason>` for anything else;
* a valid token without the route's scope: 403
  `Insufficient permissions. Required scope(s): sessions:read`.

Two of agno's options that agno sets in code have an environment variable here:

* `AGNO_JWT_AUDIENCE` = agno's `AuthorizationConfig(verify_audience=True, audience=...)`: a token
  without `aud` is 401 `Invalid token: Token is missing the "aud" claim. ...`, one whose `aud`
  (a string or a list) names none of the audiences (comma-separated) is 401
  `Invalid token audience - token not valid for this AgentOS instance`. agno falls back to the
  AgentOS id when `verify_audience` is set without an audience: spell that id out here.
* `AGNO_JWT_ISSUER` = agno's `Authorization(issuer=...)`: a token without `iss` or with another
  issuer is 401 `Invalid token: ...` with agno's reason.

* `AGNO_USER_ISOLATION=true` = agno's `AgentOS(user_isolation=True)`: for a caller without
  `agent_os:admin`, the token's `sub` replaces the `user_id` filter of every route, and a token
  without one gets 403 `Authenticated request is missing a user identity` (`Identity`; the views
  apply it). In JWT mode a create is owned by the token's `sub` whatever the body says, as in agno.

The rest (custom claim names, roles, service accounts) is left out and said so in
docs/reliability.md. The algorithm is agno's default for `authorization=True`: RS256,
`AGNO_JWT_ALGORITHM` changes it (agno: `AuthorizationConfig(algorithm=...)`).
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt

ADMIN_SCOPE = "agent_os:admin"
# agno's `DEFAULT_SCOPE_MAPPINGS` for the sessions routes, matched as agno matches them (fnmatch,
# where `*` also crosses `/`: `GET /sessions/*` covers `/sessions/{id}/runs`).
SESSION_SCOPES: dict[str, list[str]] = {
    "GET /sessions": ["sessions:read"],
    "GET /sessions/*": ["sessions:read"],
    "POST /sessions": ["sessions:write"],
    "POST /sessions/*/rename": ["sessions:write"],
    "PATCH /sessions/*": ["sessions:write"],
    "DELETE /sessions": ["sessions:delete"],
    "DELETE /sessions/*": ["sessions:delete"],
}
# Subjects a token may not claim: agno assigns them to its own principals.
RESERVED_PREFIXES = ("sa:", "__oauth__:")
SCHEDULER_USER_ID = "__scheduler__"
LEEWAY_S = 10


class JwtConfigError(ValueError):
    """The JWT environment does not describe usable keys."""


@dataclass(frozen=True)
class JwtConfig:
    """The keys and claims agno's validator would use."""

    verification_keys: tuple[str, ...] = ()
    # kid -> key; "_default" for a JWKS key without a kid (agno's convention).
    jwks_keys: Mapping[str, jwt.PyJWK] = field(default_factory=dict, compare=False)
    algorithm: str = "RS256"
    scopes_claim: str = "scopes"
    user_id_claim: str = "sub"
    # agno's expected audience (verify_audience with audience) and pinned issuer; empty: off.
    audience: tuple[str, ...] = ()
    issuer: str | None = None
    audience_claim: str = "aud"
    issuer_claim: str = "iss"
    # agno's `AgentOS(user_isolation=True)`: non-admin callers see and write only their own sessions.
    user_isolation: bool = False


def load_jwks(path: str) -> dict[str, jwt.PyJWK]:
    """agno's `_load_jwks_file`: keys by kid; a key that does not parse is skipped."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise JwtConfigError(f"JWKS file not found: {path}") from None
    except (OSError, ValueError) as exc:
        raise JwtConfigError(f"Invalid JSON in JWKS file {path}: {exc}") from None
    keys: dict[str, jwt.PyJWK] = {}
    for key_data in data.get("keys", []) if isinstance(data, dict) else []:
        try:
            keys[key_data.get("kid") or "_default"] = jwt.PyJWK.from_dict(key_data)
        except Exception:  # agno logs and skips a key it cannot use
            continue
    return keys


def jwt_config_from_env(env: Mapping[str, str]) -> JwtConfig | None:
    """None unless `JWT_VERIFICATION_KEY` or `JWT_JWKS_FILE` is set."""
    key = env.get("JWT_VERIFICATION_KEY", "")
    jwks_file = env.get("JWT_JWKS_FILE", "")
    if not key and not jwks_file:
        return None
    jwks = load_jwks(jwks_file) if jwks_file else {}
    if not key and not jwks:
        raise JwtConfigError(f"JWT_JWKS_FILE {jwks_file} holds no usable key")
    audience = tuple(a.strip() for a in env.get("AGNO_JWT_AUDIENCE", "").split(",") if a.strip())
    return JwtConfig(
        verification_keys=(key,) if key else (),
        jwks_keys=jwks,
        algorithm=env.get("AGNO_JWT_ALGORITHM") or "RS256",
        audience=audience,
        issuer=env.get("AGNO_JWT_ISSUER") or None,
        user_isolation=env.get("AGNO_USER_ISOLATION", "").strip().lower() in ("1", "true", "yes", "on"),
    )


def validate_token(config: JwtConfig, token: str) -> dict[str, Any]:
    """agno's `JWTValidator.validate_token`: the JWKS key named by the token's kid first, then
    each static key, then the audience and issuer checks. Raises PyJWT's errors as agno does."""
    kwargs: dict[str, Any] = {"algorithms": [config.algorithm], "leeway": LEEWAY_S, "options": {"verify_aud": False}}
    last: Exception | None = None
    payload: dict[str, Any] | None = None
    if config.jwks_keys:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            jwk = config.jwks_keys.get(kid) if kid else None
            jwk = jwk or config.jwks_keys.get("_default")
            if jwk is not None:
                payload = jwt.decode(token, jwk.key, **kwargs)
        except jwt.ExpiredSignatureError:
            raise
        except jwt.InvalidTokenError as exc:
            if not config.verification_keys:
                raise
            last = exc
    if payload is None:
        for key in config.verification_keys:
            try:
                payload = jwt.decode(token, key, **kwargs)
                break
            except jwt.ExpiredSignatureError:
                raise
            except jwt.InvalidTokenError as exc:
                last = exc
    if payload is None:
        raise last or jwt.InvalidTokenError("No verification keys configured")
    check_audience_and_issuer(config, payload)
    return payload


def check_audience_and_issuer(config: JwtConfig, payload: Mapping[str, Any]) -> None:
    """agno's checks after the signature (`validate_token`'s tail), with agno's messages: the
    audience when one is expected, then the issuer when one is pinned."""
    if config.audience:
        token_audience = _required_claim(payload, config.audience_claim, "Audience")
        expected = list(config.audience)
        if isinstance(token_audience, str):
            held = [token_audience]
        elif isinstance(token_audience, list):
            held = token_audience
        else:
            held = [token_audience] if token_audience else []
        if not any(aud in expected for aud in held):
            raise jwt.InvalidAudienceError(f"Invalid audience. Expected one of: {expected}, got: {held}")
    if config.issuer:
        token_issuer = _required_claim(payload, config.issuer_claim, "Issuer")
        if token_issuer != config.issuer:
            raise jwt.InvalidIssuerError(f"Invalid issuer. Expected: {config.issuer}, got: {token_issuer}")


def _required_claim(payload: Mapping[str, Any], claim: str, verification: str) -> Any:
    """The claim's value, or agno's error for a token without it."""
    value = payload.get(claim)
    if value is None:
        raise jwt.InvalidTokenError(
            f'Token is missing the "{claim}" claim. '
            f"{verification} verification requires this claim to be present in the token."
        )
    return value


def required_scopes(method: str, path: str) -> list[str]:
    """agno's `get_required_scopes_for_route` over SESSION_SCOPES (exact key, then patterns)."""
    key = f"{method} {path}"
    if key in SESSION_SCOPES:
        return SESSION_SCOPES[key]
    for pattern, scopes in SESSION_SCOPES.items():
        pattern_method, pattern_path = pattern.split(" ", 1)
        if pattern_method == method and fnmatch.fnmatch(path, pattern_path):
            return scopes
    return []


def has_scopes(held: list[Any], required: list[str]) -> bool:
    """agno's `has_required_scopes` for global scopes (the sessions routes name no resource):
    the admin scope, or every required `resource:action` held exactly."""
    if ADMIN_SCOPE in held:
        return True
    return all(scope in held for scope in required)


def token_scopes(config: JwtConfig, payload: Mapping[str, Any]) -> list[Any]:
    scopes = payload.get(config.scopes_claim, [])
    if isinstance(scopes, str):
        return [scopes]
    return scopes if isinstance(scopes, list) else []


def is_reserved_subject(user_id: Any) -> bool:
    return isinstance(user_id, str) and (user_id.startswith(RESERVED_PREFIXES) or user_id == SCHEDULER_USER_ID)


def insufficient_detail(required: list[str]) -> str:
    """agno's `build_insufficient_permissions_detail`."""
    base = "Insufficient permissions"
    return f"{base}. Required scope(s): {', '.join(required)}" if required else base


def check(config: JwtConfig, token: str | None, method: str, path: str) -> tuple[int, str] | None:
    """None when the request may pass, else agno's (status, detail) for it."""
    return authorize(config, token, method, path)[0]


@dataclass(frozen=True)
class Identity:
    """Who a verified token says the caller is, as agno's middleware and `get_scoped_user_id`
    (agno/os/middleware/user_scope.py) see it."""

    user_id: str | None  # the token's `sub` (agno's request.state.user_id)
    # Under user isolation, a non-admin caller's reads and writes are scoped to this user id.
    scoped_user_id: str | None = None
    # Isolation on and no identity: agno's routes answer 403 MISSING_USER_IDENTITY.
    missing_identity: bool = False


MISSING_USER_IDENTITY = "Authenticated request is missing a user identity"


def authorize(
    config: JwtConfig, token: str | None, method: str, path: str
) -> tuple[tuple[int, str] | None, Identity | None]:
    """`(refusal, identity)`: agno's (status, detail) or None when the request may pass, and
    the verified token's identity (None when refused)."""
    refusal = _refusal(config, token, method, path)
    if isinstance(refusal, tuple):
        return refusal, None
    user_id = refusal.get(config.user_id_claim)
    if not config.user_isolation or ADMIN_SCOPE in token_scopes(config, refusal):
        # Isolation off, or an admin (the scope plane is agno's default: token scopes count).
        return None, Identity(user_id)
    if not user_id:
        return None, Identity(user_id, missing_identity=True)
    return None, Identity(user_id, scoped_user_id=user_id)


def _refusal(config: JwtConfig, token: str | None, method: str, path: str) -> tuple[int, str] | dict[str, Any]:
    """agno's (status, detail) for a refused request, else the verified payload."""
    if not token:
        return 401, "Authorization header missing"
    try:
        payload = validate_token(config, token)
    except jwt.InvalidAudienceError:  # before InvalidTokenError, its base class (agno's order)
        return 401, "Invalid token audience - token not valid for this AgentOS instance"
    except jwt.ExpiredSignatureError:
        return 401, "Token has expired"
    except jwt.InvalidTokenError as exc:
        return 401, f"Invalid token: {exc}"
    except Exception as exc:  # agno: any other failure of decoding is a 401 too
        return 401, f"Error decoding token: {exc}"
    if is_reserved_subject(payload.get(config.user_id_claim)):
        return 401, "Invalid token subject"
    required = required_scopes(method, path)
    if required and not has_scopes(token_scopes(config, payload), required):
        return 403, insufficient_detail(required)
    return payload
