"""Security settings: client authentication (CDS Hooks 2.0.1 § Trusting CDS Clients), CORS, limits.

Read from `MIPOMERSEN_CDS_*` variables by `config.load_settings`. Parsing accepts a missing
issuer list or public URL, because the offline `evaluate` command needs neither;
`require_serving_settings` refuses them when the HTTP service starts with authentication on
(the default), so an unconfigured server never runs open by accident.
"""

from __future__ import annotations

import ipaddress
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from jwt import PyJWK
from jwt.exceptions import PyJWTError

from .errors import ConfigurationError
from .json_limits import DEFAULT_MAX_JSON_DEPTH, MAX_JSON_DEPTH_LIMIT

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "SECURITY_SETTING_NAMES",
    "AuthMode",
    "SecuritySettings",
    "TrustedIssuer",
    "jwk_problem",
    "parse_security_settings",
    "require_serving_settings",
]

PREFIX = "MIPOMERSEN_CDS_"
SECURITY_SETTING_NAMES = (
    "AUTH",
    "TRUSTED_ISSUERS",
    "PUBLIC_URL",
    "JWT_ALGORITHMS",
    "JWT_LEEWAY_SECONDS",
    "JWT_MAX_LIFETIME_SECONDS",
    "REPLAY_STORE",
    "CORS_ORIGINS",
    "MAX_JSON_DEPTH",
)
# CDS Hooks 2.0.1 § JWT Signing Algorithm: never `none`, never a symmetric (HMAC) algorithm.
ASYMMETRIC_ALGORITHMS = (
    "ES256",
    "ES384",
    "ES512",
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "EdDSA",
)
DEFAULT_ALGORITHMS = ("ES384", "RS384")  # the two the spec RECOMMENDS
DEFAULT_LEEWAY_SECONDS = 30.0
MAX_LEEWAY_SECONDS = 300.0
DEFAULT_MAX_LIFETIME_SECONDS = 3600.0  # best practices: JWTs should live at most an hour
SQLITE_STORE = "sqlite"
_REDIS_SCHEMES = frozenset({"redis", "rediss", "unix"})
_ISSUER_FIELDS = frozenset({"jwks_url", "jwks", "tenant"})
_PRIVATE_JWK_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
_LOOPBACK_NAMES = frozenset({"localhost"})


class AuthMode(StrEnum):
    """Whether callers must present a CDS Hooks JWT."""

    REQUIRED = "required"
    OFF = "off"  # local development only; logged as a warning at start-up


@dataclass(frozen=True, slots=True)
class TrustedIssuer:
    """One CDS client (`iss`) this service trusts, and where its public keys come from.

    `keys` are pinned public JWKs; without them the JWK Set is fetched from `jwks_url`. A JWT
    whose header names a `jku` is accepted only when it equals `jwks_url`. An empty `tenants`
    accepts any `tenant` claim, or none.
    """

    issuer: str
    jwks_url: str | None = None
    keys: tuple[Mapping[str, Any], ...] = ()
    tenants: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class SecuritySettings:
    """Authentication, CORS and request-limit settings."""

    auth: AuthMode = AuthMode.REQUIRED
    trusted_issuers: Mapping[str, TrustedIssuer] = field(
        default_factory=lambda: MappingProxyType({})
    )
    public_url: str | None = None  # external base URL; `aud` must be public_url + request path
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    leeway_seconds: float = DEFAULT_LEEWAY_SECONDS
    max_lifetime_seconds: float = DEFAULT_MAX_LIFETIME_SECONDS
    replay_store: str = SQLITE_STORE  # "sqlite" (in DATA_DIR) or a redis:// URL
    cors_origins: tuple[str, ...] = ("*",)
    max_json_depth: int = DEFAULT_MAX_JSON_DEPTH


def parse_security_settings(values: Mapping[str, str]) -> SecuritySettings:
    """Build `SecuritySettings` from unprefixed setting values; raise `ConfigurationError`."""
    algorithms = _parse_algorithms(values.get("JWT_ALGORITHMS"))
    public_url = values.get("PUBLIC_URL", "").strip()
    return SecuritySettings(
        auth=_parse_auth_mode(values.get("AUTH", AuthMode.REQUIRED.value)),
        trusted_issuers=_parse_issuers(values.get("TRUSTED_ISSUERS", ""), algorithms),
        public_url=_parse_url("PUBLIC_URL", public_url).rstrip("/") if public_url else None,
        algorithms=algorithms,
        leeway_seconds=_parse_seconds(
            "JWT_LEEWAY_SECONDS",
            values,
            DEFAULT_LEEWAY_SECONDS,
            minimum=0,
            maximum=MAX_LEEWAY_SECONDS,
        ),
        max_lifetime_seconds=_parse_seconds(
            "JWT_MAX_LIFETIME_SECONDS", values, DEFAULT_MAX_LIFETIME_SECONDS, minimum=1
        ),
        replay_store=_parse_replay_store(values.get("REPLAY_STORE", SQLITE_STORE)),
        cors_origins=_parse_origins(values.get("CORS_ORIGINS", "*")),
        max_json_depth=_parse_depth(values.get("MAX_JSON_DEPTH")),
    )


def require_serving_settings(security: SecuritySettings) -> None:
    """Refuse to serve HTTP with authentication on but no way to check a caller's JWT."""
    if security.auth is AuthMode.OFF:
        return
    advice = f"(or set {PREFIX}AUTH=off, for local development only)"
    if not security.trusted_issuers:
        raise ConfigurationError(
            f"{PREFIX}TRUSTED_ISSUERS is not set: with {PREFIX}AUTH=required (the default) the "
            f"service needs at least one trusted CDS client {advice}"
        )
    if security.public_url is None:
        raise ConfigurationError(
            f"{PREFIX}PUBLIC_URL is not set: with {PREFIX}AUTH=required (the default) the "
            f"service must know its external URL to check each JWT's aud {advice}"
        )


def jwk_problem(key: Any, algorithms: tuple[str, ...]) -> str | None:
    """Return why `key` cannot verify CDS Hooks JWTs, or None when it can."""
    if not isinstance(key, dict):
        return "is not a JSON object"
    kid = key.get("kid")
    if not isinstance(kid, str) or not kid:
        return "has no kid"
    if key.get("kty") == "oct":
        return "is a symmetric (oct) key, which CDS Hooks forbids"
    private = [member for member in _PRIVATE_JWK_MEMBERS if member in key]
    if private:
        return f"holds private key material ({', '.join(private)}); give the public key only"
    if key.get("use", "sig") != "sig":
        return "is not a signature key (use is not sig)"
    alg = key.get("alg")
    if alg is not None and alg not in algorithms:
        return f"has alg {str(alg)[:20]!r}, which {PREFIX}JWT_ALGORITHMS does not allow"
    try:
        PyJWK(key)
    except PyJWTError as error:
        return f"is not a usable public key ({type(error).__name__})"
    return None


def _parse_auth_mode(text: str) -> AuthMode:
    try:
        return AuthMode(text.strip().lower())
    except ValueError:
        choices = ", ".join(mode.value for mode in AuthMode)
        raise ConfigurationError(f"{PREFIX}AUTH={text!r} must be one of {choices}") from None


def _parse_algorithms(text: str | None) -> tuple[str, ...]:
    if text is None:
        return DEFAULT_ALGORITHMS
    names = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if not names:
        raise ConfigurationError(f"{PREFIX}JWT_ALGORITHMS is empty")
    for name in names:
        if name not in ASYMMETRIC_ALGORITHMS:
            raise ConfigurationError(
                f"{PREFIX}JWT_ALGORITHMS: {name!r} is not allowed; CDS Hooks forbids none and "
                f"symmetric algorithms; choose from {', '.join(ASYMMETRIC_ALGORITHMS)}"
            )
    return names


def _parse_issuers(text: str, algorithms: tuple[str, ...]) -> Mapping[str, TrustedIssuer]:
    name = f"{PREFIX}TRUSTED_ISSUERS"
    if not text.strip():
        return MappingProxyType({})
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigurationError(f"{name} is not valid JSON: {error.msg}") from None
    if not isinstance(document, dict):
        raise ConfigurationError(f'{name} must be a JSON object {{"<iss>": {{"jwks_url": ...}}}}')
    issuers: dict[str, TrustedIssuer] = {}
    for issuer, entry in document.items():
        where = f"{name}[{issuer!r}]"
        if not issuer:
            raise ConfigurationError(f"{name}: an issuer (iss) must not be empty")
        if not isinstance(entry, dict):
            raise ConfigurationError(f"{where} must be a JSON object")
        unknown = sorted(set(entry) - _ISSUER_FIELDS)
        if unknown:
            raise ConfigurationError(
                f"{where}: unknown field {unknown[0]!r}; known: {', '.join(sorted(_ISSUER_FIELDS))}"
            )
        if "jwks" not in entry and "jwks_url" not in entry:
            raise ConfigurationError(f"{where} needs jwks_url or an inline jwks")
        jwks_url = entry.get("jwks_url")
        if jwks_url is not None:
            if not isinstance(jwks_url, str):
                raise ConfigurationError(f"{where}.jwks_url must be a string")
            jwks_url = _parse_url(f"TRUSTED_ISSUERS[{issuer!r}].jwks_url", jwks_url, query=True)
        issuers[issuer] = TrustedIssuer(
            issuer=issuer,
            jwks_url=jwks_url,
            keys=_parse_inline_keys(where, entry.get("jwks"), algorithms),
            tenants=_parse_tenants(where, entry.get("tenant")),
        )
    return MappingProxyType(issuers)


def _parse_inline_keys(
    where: str, jwks: Any, algorithms: tuple[str, ...]
) -> tuple[Mapping[str, Any], ...]:
    if jwks is None:
        return ()
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list) or not keys:
        raise ConfigurationError(f'{where}.jwks must be a JWK Set {{"keys": [...]}} with keys')
    kids: set[str] = set()
    for index, key in enumerate(keys):
        problem = jwk_problem(key, algorithms)
        if problem:
            raise ConfigurationError(f"{where}.jwks.keys[{index}] {problem}")
        if key["kid"] in kids:
            raise ConfigurationError(f"{where}.jwks.keys[{index}]: kid {key['kid']!r} repeats")
        kids.add(key["kid"])
    return tuple(MappingProxyType(dict(key)) for key in keys)


def _parse_tenants(where: str, value: Any) -> frozenset[str]:
    if value is None:
        return frozenset()
    tenants = [value] if isinstance(value, str) else value
    if not isinstance(tenants, list) or not all(isinstance(t, str) and t for t in tenants):
        raise ConfigurationError(f"{where}.tenant must be a string or a list of strings")
    return frozenset(tenants)


def _parse_url(name: str, text: str, *, query: bool = False) -> str:
    """Check an absolute https URL (http only for this machine, e.g. local tests)."""
    parts = urlsplit(text.strip())
    problem = None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        problem = "must be an absolute https:// URL"
    elif parts.scheme == "http" and not _is_loopback(parts.hostname):
        problem = "must use https (http is accepted only for localhost)"
    elif parts.username or parts.password or parts.fragment or (parts.query and not query):
        problem = "must not contain credentials, a query or a fragment"
    if problem:
        raise ConfigurationError(f"{PREFIX}{name}={text!r} {problem}")
    return text.strip()


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _parse_seconds(
    name: str,
    values: Mapping[str, str],
    default: float,
    *,
    minimum: float,
    maximum: float = 86400,
) -> float:
    if name not in values:
        return default
    text = values[name]
    try:
        number = float(text)
    except ValueError:
        raise ConfigurationError(f"{PREFIX}{name}={text!r} is not a number of seconds") from None
    if not math.isfinite(number) or not minimum <= number <= maximum:
        raise ConfigurationError(
            f"{PREFIX}{name}={text!r} must be between {minimum:g} and {maximum:g} seconds"
        )
    return number


def _parse_replay_store(text: str) -> str:
    value = text.strip()
    if value == SQLITE_STORE or urlsplit(value).scheme in _REDIS_SCHEMES:
        return value
    # Not quoted: a Redis URL may hold a password.
    raise ConfigurationError(
        f"{PREFIX}REPLAY_STORE must be 'sqlite' or a redis://, rediss:// or unix:// URL"
    )


def _parse_origins(text: str) -> tuple[str, ...]:
    # Scheme and host are case-insensitive; browsers send them in lower case.
    origins = tuple(dict.fromkeys(part.strip().lower() for part in text.split(",") if part.strip()))
    if origins == ("*",):
        return origins
    if not origins or "*" in origins:
        raise ConfigurationError(
            f"{PREFIX}CORS_ORIGINS must be * or a comma-separated list of origins"
        )
    for origin in origins:
        parts = urlsplit(origin)
        if (
            parts.scheme not in ("https", "http")
            or not parts.hostname
            or origin != f"{parts.scheme}://{parts.netloc}"
        ):
            raise ConfigurationError(
                f"{PREFIX}CORS_ORIGINS: {origin!r} is not an origin such as https://ehr.example.org"
            )
    return origins


def _parse_depth(text: str | None) -> int:
    if text is None:
        return DEFAULT_MAX_JSON_DEPTH
    try:
        depth = int(text)
    except ValueError:
        depth = 0
    if not 8 <= depth <= MAX_JSON_DEPTH_LIMIT:
        raise ConfigurationError(
            f"{PREFIX}MAX_JSON_DEPTH={text!r} must be a whole number from 8 to "
            f"{MAX_JSON_DEPTH_LIMIT}"
        )
    return depth
