"""The service's settings: one declarative model of every `MIPOMERSEN_CDS_*` variable.

Each field of `Settings` is one environment variable (the field name in capitals after the
prefix), declared once with its type, default, bounds and a one-line meaning; pydantic-settings
reads and converts the values. `load_settings` applies defaults, then the variables of an
explicit `environ`, then unprefixed overrides, and turns every refusal into a
`ConfigurationError` naming the variable. What the library cannot express is checked here too:
trusted issuers (JSON, public keys only), the database URL, and variables with the prefix that
name no setting (a typo would silently leave a safety threshold at its default).
`require_serving_settings` refuses authentication on without issuers or a public URL when the
HTTP service starts (the offline `evaluate` command needs neither).

The rule thresholds and windows are defined, with their sources, by `RuleConfig` in the rules
layer; this model takes its defaults from there and builds the `RuleConfig` the rules apply.

    python -m cds_service.settings --markdown   # the README's Configuration table
"""

from __future__ import annotations

import ipaddress
import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from functools import cache, cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit

from jwt import PyJWK
from jwt.exceptions import PyJWTError
from pydantic import (
    Field,
    JsonValue,
    PlainValidator,
    SecretStr,
    ValidationError,
    ValidationInfo,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from cds_service.errors import ConfigurationError
from cds_service.rules.config import DEFAULT_ULN, Profile, RuleConfig
from fhir_mappings import ValidationScope
from fhir_mappings.values import Analyte, MedicationCodes

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "AuthMode",
    "Settings",
    "TrustedIssuer",
    "jwk_problem",
    "load_settings",
    "require_serving_settings",
    "settings_help",
    "settings_markdown",
    "settings_report",
    "sqlite_database_url",
]

DEFAULT_MAX_JSON_DEPTH = 64  # real CDS Hooks requests nest 11-13 levels (examples/, Synthea)
MAX_JSON_DEPTH_LIMIT = 500  # beyond this the standard JSON parser itself gives up

DATABASE_FILE_NAME = "mipomersen-cds.sqlite3"
SQLITE_STORE = "sqlite"
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
_RULE_DEFAULTS = RuleConfig()
_REDIS_SCHEMES = frozenset({"redis", "rediss", "unix"})
_ISSUER_FIELDS = frozenset({"jwks_url", "jwks", "tenant"})
_PRIVATE_JWK_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
_LOOPBACK_NAMES = frozenset({"localhost"})
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off", ""})
_MASK = "********"
MIN_METRICS_TOKEN_LENGTH = 16


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


class _Problem(ValueError):
    """Why a value is refused, worded to follow the variable's name.

    `_bad` quotes the value (`=…`); secrets and long JSON are never quoted, so their problems
    start with a space, or with the place inside the value (`['iss'].jwks_url …`).
    """


def _bad(text: object, problem: str) -> _Problem:
    return _Problem(f"={text!r} {problem}")


# --- parsers of the values pydantic cannot parse by itself ---------------------------------------


def _word(text: object) -> str:
    if not isinstance(text, str):
        raise _bad(text, "must be text")
    return text.strip().lower()


_E = TypeVar("_E", bound=StrEnum)


def _choice(kind: type[_E], wording: str) -> Callable[[object], _E]:
    """Return a parser of `kind`'s values in any case; `wording` precedes the choices."""

    def parse(value: object) -> _E:
        if isinstance(value, kind):
            return value
        try:
            return kind(_word(value))
        except ValueError:
            choices = ", ".join(member.value for member in kind)
            raise _bad(value, f"{wording} {choices}") from None

    return parse


def _switch(value: object) -> bool:
    """Read true/false, 1/0, yes/no or on/off in any case; empty means false."""
    if isinstance(value, bool):
        return value
    word = _word(value)
    if word in _TRUE or word in _FALSE:
        return word in _TRUE
    raise _bad(value, "must be true or false (on or off, yes or no, 1 or 0)")


def _items(value: object) -> tuple[str, ...]:
    """Split a comma-separated list (a tuple given by code passes as it is)."""
    if isinstance(value, tuple | list):
        return tuple(str(item) for item in value)
    if not isinstance(value, str):
        raise _bad(value, "must be a comma-separated list")
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _url_list(value: object) -> tuple[str, ...]:
    urls = tuple(url.rstrip("/") for url in _items(value))
    for url in urls:
        if not url.startswith(("https://", "http://")):
            raise _Problem(f" entry {url!r} is not an http(s) URL")
    return urls


def _algorithms(value: object) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(_items(value)))
    if not names:
        raise _Problem(" is empty")
    for name in names:
        if name not in ASYMMETRIC_ALGORITHMS:
            raise _Problem(
                f": {name!r} is not allowed; CDS Hooks forbids none and symmetric algorithms; "
                f"choose from {', '.join(ASYMMETRIC_ALGORITHMS)}"
            )
    return names


def _origins(value: object) -> tuple[str, ...]:
    # Scheme and host are case-insensitive; browsers send them in lower case.
    origins = tuple(dict.fromkeys(origin.lower() for origin in _items(value)))
    if origins == ("*",):
        return origins
    if not origins or "*" in origins:
        raise _Problem(" must be * or a comma-separated list of origins")
    for origin in origins:
        parts = urlsplit(origin)
        if (
            parts.scheme not in ("https", "http")
            or not parts.hostname
            or origin != f"{parts.scheme}://{parts.netloc}"
        ):
            raise _Problem(f": {origin!r} is not an origin such as https://ehr.example.org")
    return origins


def _medication_codes(value: object) -> MedicationCodes:
    """Parse `system|code` pairs separated by commas (e.g. a local RxNorm or NDC code)."""
    if isinstance(value, MedicationCodes):
        return value
    codes: set[tuple[str, str]] = set()
    for item in _items(value):
        system, separator, code = item.rpartition("|")
        if not separator or not system or not code:
            raise _Problem(f" entry {item!r} must look like system|code")
        codes.add((system, code))
    return MedicationCodes(codes=frozenset(codes))


def _render_medication_codes(codes: MedicationCodes) -> str:
    return ",".join(f"{system}|{code}" for system, code in sorted(codes.codes))


def _data_dir(value: object) -> Path:
    """Return the directory, made absolute now (relative to the working directory at start-up)."""
    if isinstance(value, Path):
        return value.absolute()
    if not isinstance(value, str) or not value.strip():
        raise _Problem(" must name a directory")
    return Path(value).absolute()


def sqlite_database_url(data_dir: Path) -> str:
    """Return the URL of the service's SQLite database in `data_dir` (the default database)."""
    return f"sqlite:///{data_dir / DATABASE_FILE_NAME}"


def _database_url(value: object) -> str:
    """Check a SQLAlchemy URL: a SQLite file, or PostgreSQL through psycopg 3.

    `postgresql://` and `postgres://` are read as `postgresql+psycopg://`. The value is never
    quoted in a message: it may hold a password.
    """
    try:
        url = make_url(str(value).strip())
    except ArgumentError:
        raise _Problem(
            " is not a database URL; use sqlite:///<file> or "
            "postgresql+psycopg://<user>@<host>/<database>"
        ) from None
    backend, _, driver = url.drivername.partition("+")
    if backend in ("postgresql", "postgres") and driver in ("", "psycopg"):
        url = url.set(drivername="postgresql+psycopg")
    elif backend == "sqlite" and driver in ("", "pysqlite"):
        if url.database in (None, "", ":memory:"):
            raise _Problem(" must name a SQLite file, not an in-memory database")
    else:
        raise _Problem(
            f" must be a sqlite:/// or postgresql+psycopg:// URL (found {url.drivername})"
        )
    return url.render_as_string(hide_password=False)


def _replay_store(value: object) -> str:
    text = str(value).strip()
    if text == SQLITE_STORE or urlsplit(text).scheme in _REDIS_SCHEMES:
        return text
    # Not quoted: a Redis URL may hold a password.
    raise _Problem(" must be 'sqlite' or a redis://, rediss:// or unix:// URL")


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _url_problem(text: str, *, query: bool = False) -> str | None:
    """Return why `text` is not an absolute https URL (http only for this machine), or None."""
    parts = urlsplit(text.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "must be an absolute https:// URL"
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        return "must use https (http is accepted only for localhost)"
    if parts.username or parts.password or parts.fragment or (parts.query and not query):
        return "must not contain credentials, a query or a fragment"
    return None


def _public_url(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    problem = _url_problem(text)
    if problem:
        raise _bad(value, problem)
    return text.rstrip("/")


def _metrics_token(value: object) -> SecretStr | None:
    text = (value.get_secret_value() if isinstance(value, SecretStr) else str(value or "")).strip()
    if text and len(text) < MIN_METRICS_TOKEN_LENGTH:
        raise _Problem(f" is too short: use at least {MIN_METRICS_TOKEN_LENGTH} random characters")
    return SecretStr(text) if text else None


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
        allowed = Settings.variable("jwt_algorithms")
        return f"has alg {str(alg)[:20]!r}, which {allowed} does not allow"
    try:
        PyJWK(key)
    except PyJWTError as error:
        return f"is not a usable public key ({type(error).__name__})"
    return None


def _trusted_issuers(value: object, info: ValidationInfo) -> Mapping[str, TrustedIssuer]:
    """Parse `{"<iss>": {"jwks_url": ..., "jwks": {...}, "tenant": ...}}`; public keys only."""
    if isinstance(value, Mapping) and all(isinstance(v, TrustedIssuer) for v in value.values()):
        return MappingProxyType(dict(value))
    algorithms: tuple[str, ...] = info.data.get("jwt_algorithms", ())
    text = value if isinstance(value, str) else ""
    if not text.strip():
        return MappingProxyType({})
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise _Problem(f" is not valid JSON: {error.msg}") from None
    if not isinstance(document, dict):
        raise _Problem(' must be a JSON object {"<iss>": {"jwks_url": ...}}')
    issuers: dict[str, TrustedIssuer] = {}
    for issuer, entry in document.items():
        where = f"[{issuer!r}]"
        if not issuer:
            raise _Problem(": an issuer (iss) must not be empty")
        if not isinstance(entry, dict):
            raise _Problem(f"{where} must be a JSON object")
        unknown = sorted(set(entry) - _ISSUER_FIELDS)
        if unknown:
            known = ", ".join(sorted(_ISSUER_FIELDS))
            raise _Problem(f"{where}: unknown field {unknown[0]!r}; known: {known}")
        if "jwks" not in entry and "jwks_url" not in entry:
            raise _Problem(f"{where} needs jwks_url or an inline jwks")
        jwks_url = entry.get("jwks_url")
        if jwks_url is not None:
            if not isinstance(jwks_url, str):
                raise _Problem(f"{where}.jwks_url must be a string")
            problem = _url_problem(jwks_url, query=True)
            if problem:
                raise _Problem(f"{where}.jwks_url={jwks_url!r} {problem}")
            jwks_url = jwks_url.strip()
        issuers[issuer] = TrustedIssuer(
            issuer=issuer,
            jwks_url=jwks_url,
            keys=_inline_keys(where, entry.get("jwks"), algorithms),
            tenants=_tenants(where, entry.get("tenant")),
        )
    return MappingProxyType(issuers)


def _inline_keys(
    where: str, jwks: Any, algorithms: tuple[str, ...]
) -> tuple[Mapping[str, Any], ...]:
    if jwks is None:
        return ()
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list) or not keys:
        raise _Problem(f'{where}.jwks must be a JWK Set {{"keys": [...]}} with keys')
    kids: set[str] = set()
    for index, key in enumerate(keys):
        problem = jwk_problem(key, algorithms)
        if problem:
            raise _Problem(f"{where}.jwks.keys[{index}] {problem}")
        if key["kid"] in kids:
            raise _Problem(f"{where}.jwks.keys[{index}]: kid {key['kid']!r} repeats")
        kids.add(key["kid"])
    return tuple(MappingProxyType(dict(key)) for key in keys)


def _tenants(where: str, value: Any) -> frozenset[str]:
    if value is None:
        return frozenset()
    tenants = [value] if isinstance(value, str) else value
    if not isinstance(tenants, list) or not all(isinstance(t, str) and t for t in tenants):
        raise _Problem(f"{where}.tenant must be a string or a list of strings")
    return frozenset(tenants)


def _render_issuers(issuers: Mapping[str, TrustedIssuer]) -> str:
    document: dict[str, Any] = {}
    for iss, issuer in issuers.items():
        entry: dict[str, Any] = {}
        if issuer.jwks_url is not None:
            entry["jwks_url"] = issuer.jwks_url
        if issuer.keys:
            entry["jwks"] = {"keys": [dict(key) for key in issuer.keys]}
        if issuer.tenants:
            entry["tenant"] = sorted(issuer.tenants)
        document[iss] = entry
    return json.dumps(document, separators=(",", ":")) if document else ""


def default_workers() -> int:
    """Return gunicorn's usual worker count for this machine: two per core, plus one."""
    return 2 * (os.cpu_count() or 1) + 1


def _days(rule_default: timedelta) -> float:
    return rule_default / timedelta(days=1)


# --- the types of the fields ----------------------------------------------------------------------

ProfileSetting = Annotated[
    Profile, PlainValidator(_choice(Profile, "is not a rule profile; choose one of"))
]
AuthSetting = Annotated[AuthMode, PlainValidator(_choice(AuthMode, "must be one of"))]
ValidationSetting = Annotated[
    ValidationScope, PlainValidator(_choice(ValidationScope, "must be one of"))
]
Switch = Annotated[bool, PlainValidator(_switch)]
Multiple = Annotated[float, Field(gt=0)]  # × ULN
Days = Annotated[float, Field(gt=0)]
UlnSetting = Annotated[float, Field(gt=0)]
Seconds = Annotated[float, Field(gt=0)]
UrlList = Annotated[tuple[str, ...], NoDecode, PlainValidator(_url_list)]
Algorithms = Annotated[tuple[str, ...], NoDecode, PlainValidator(_algorithms)]
Origins = Annotated[tuple[str, ...], NoDecode, PlainValidator(_origins)]
MedicationCodesSetting = Annotated[MedicationCodes, NoDecode, PlainValidator(_medication_codes)]
TrustedIssuers = Annotated[Mapping[str, TrustedIssuer], NoDecode, PlainValidator(_trusted_issuers)]
DataDir = Annotated[Path, PlainValidator(_data_dir)]
DatabaseUrl = Annotated[str, PlainValidator(_database_url)]
ReplayStoreSetting = Annotated[str, PlainValidator(_replay_store)]
PublicUrl = Annotated[str | None, PlainValidator(_public_url)]
MetricsToken = Annotated[SecretStr | None, PlainValidator(_metrics_token)]

# A URL whose password `mipomersen-cds settings` masks (a SecretStr is masked whole).
_URL_SECRET: dict[str, JsonValue] = {"secret": "url-password"}


def _shown_default(text: str, *, secret: str | None = None) -> dict[str, JsonValue]:
    """Return a field's extra: its default as `settings` shows it, and what of it is secret."""
    return {"shown_default": text, "secret": secret}


class _EnvironSource(EnvSettingsSource):
    """Environment variables read from an explicit mapping (tests, `create_app(environ=...)`)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        prefix = Settings.model_config.get("env_prefix", "")
        environ = self._environ
        return {key.lower(): value for key, value in environ.items() if key.startswith(prefix)}


class Settings(BaseSettings):
    """Everything the service is configured with; build it with `load_settings`.

    `Settings()` alone gives the defaults: only `load_settings` reads environment variables.
    """

    model_config = SettingsConfigDict(
        env_prefix="MIPOMERSEN_CDS_",
        case_sensitive=False,
        frozen=True,
        extra="forbid",
        validate_default=True,
        allow_inf_nan=False,
        arbitrary_types_allowed=True,
    )

    # --- rules (defaults and sources: RuleConfig, docs/clinical-policy.md) ---
    profile: ProfileSetting = Field(
        _RULE_DEFAULTS.profile,
        description="rule profile: `label` (the FDA label) or `conservative` (the stricter seed)",
    )
    elevation_multiple: Multiple = Field(
        _RULE_DEFAULTS.elevation_multiple,
        description="ALT/AST elevation: confirm, withhold or discontinue from here (× ULN)",
    )
    severe_elevation_multiple: Multiple = Field(
        _RULE_DEFAULTS.severe_elevation_multiple,
        description="ALT/AST level that withholds without confirmation (× ULN)",
    )
    bilirubin_multiple: Multiple = Field(
        _RULE_DEFAULTS.bilirubin_multiple,
        description="Total bilirubin level that, with an elevation, discontinues (× ULN)",
    )
    confirmation_window_days: Days = Field(
        _days(_RULE_DEFAULTS.confirmation_window),
        description="Longest gap between an elevation and the earlier result that confirms it",
    )
    current_window_days: Days = Field(
        _days(_RULE_DEFAULTS.current_window),
        description="How close before the latest ALT/AST the other one still describes the "
        "current level",
    )
    discontinue_window_days: Days = Field(
        _days(_RULE_DEFAULTS.discontinue_window),
        description="Bilirubin or liver-injury symptom at most this far from the elevation",
    )
    baseline_window_days: Days = Field(
        _days(_RULE_DEFAULTS.baseline_window),
        description="Results this recent count as baseline; older ones are history for a new start",
    )
    first_year_days: Days = Field(
        _days(_RULE_DEFAULTS.first_year), description="Length of the first year of therapy"
    )
    first_year_interval_days: Days = Field(
        _days(_RULE_DEFAULTS.first_year_interval),
        description="Longest gap between ALT/AST tests in the first year",
    )
    maintenance_interval_days: Days = Field(
        _days(_RULE_DEFAULTS.maintenance_interval),
        description="Longest gap between ALT/AST tests after the first year",
    )
    repeat_within_days: Days = Field(
        _days(_RULE_DEFAULTS.repeat_within),
        description="A confirming repeat is due this long after the elevation; follow-up tests "
        "this long after a withhold",
    )
    conservative_interval_days: Days = Field(
        _days(_RULE_DEFAULTS.conservative_interval),
        description="Conservative profile: longest gap between ALT/AST tests",
    )
    conservative_first_month_days: Days = Field(
        _days(_RULE_DEFAULTS.conservative_first_month),
        description="Conservative profile: the first month of therapy, tested at that gap",
    )
    conservative_after_elevation_days: Days = Field(
        _days(_RULE_DEFAULTS.conservative_after_elevation),
        description="Conservative profile: tested at that gap for this long after an elevation",
    )
    resolved_elevation_lookback_days: Days = Field(
        _days(_RULE_DEFAULTS.resolved_elevation_lookback),
        description="After an elevation resolves, monitor closely for this long after it",
    )
    default_uln_alt: UlnSetting = Field(
        DEFAULT_ULN[Analyte.ALT],
        description="ALT ULN when the result sends no reference range (U/L)",
    )
    default_uln_ast: UlnSetting = Field(
        DEFAULT_ULN[Analyte.AST],
        description="AST ULN when the result sends no reference range (U/L)",
    )
    default_uln_total_bilirubin: UlnSetting = Field(
        DEFAULT_ULN[Analyte.TOTAL_BILIRUBIN],
        description="total bilirubin ULN when the result sends no reference range (mg/dL)",
    )
    default_uln_direct_bilirubin: UlnSetting = Field(
        DEFAULT_ULN[Analyte.DIRECT_BILIRUBIN],
        description="direct bilirubin ULN when the result sends no reference range (mg/dL)",
    )
    default_uln_alp: UlnSetting = Field(
        DEFAULT_ULN[Analyte.ALP],
        description="ALP ULN when the result sends no reference range (U/L)",
    )
    medication_codes: MedicationCodesSetting = Field(
        MedicationCodes(),
        description="extra codes that mean mipomersen, `system|code,...` (e.g. local RxNorm/NDC)",
        json_schema_extra=_shown_default("(none)"),
    )

    # --- requests ---
    max_body_bytes: int = Field(
        10 * 1024 * 1024, ge=1, description="largest request body accepted (413 above)"
    )
    max_json_depth: int = Field(
        DEFAULT_MAX_JSON_DEPTH,
        ge=8,
        le=MAX_JSON_DEPTH_LIMIT,
        description="deepest nesting of arrays and objects accepted (400 above)",
    )
    fhir_validation: ValidationSetting = Field(
        ValidationScope.CONSUMED,
        description="FHIR validation of the resources the rules read: `consumed` (the elements "
        "they read) or `full` (every element; slower)",
    )

    # --- authentication and CORS (CDS Hooks 2.0.1 § Trusting CDS Clients) ---
    auth: AuthSetting = Field(
        AuthMode.REQUIRED,
        description="`required`, or `off` for local development only (logged as a warning)",
    )
    jwt_algorithms: Algorithms = Field(
        ("ES384", "RS384"),  # the two the spec RECOMMENDS
        description="accepted JWS algorithms (asymmetric only: ES*, RS*, PS*, EdDSA)",
    )
    trusted_issuers: TrustedIssuers = Field(
        default_factory=lambda: MappingProxyType({}),
        description='JSON: `{"<iss>": {"jwks_url": ..., "jwks": {...}, "tenant": ...}}`, '
        "public keys only",
        json_schema_extra=_shown_default("(none; required with auth)"),
    )
    public_url: PublicUrl = Field(
        None,
        description="the service's external base URL; `aud` must be this + the path called",
        json_schema_extra=_shown_default("(none; required with auth)"),
    )
    jwt_leeway_seconds: float = Field(
        30.0, ge=0, le=300, description="clock skew tolerated on `exp`, `nbf`, `iat`"
    )
    jwt_max_lifetime_seconds: float = Field(
        3600.0,  # best practices: JWTs should live at most an hour
        ge=1,
        le=86400,
        description="longest `exp - iat` accepted",
    )
    replay_store: ReplayStoreSetting = Field(
        SQLITE_STORE,
        repr=False,  # a Redis URL may hold a password
        description="where used `jti`s are kept: `sqlite` (in the data dir) or a `redis://` URL",
        json_schema_extra=_URL_SECRET,
    )
    cors_origins: Origins = Field(
        ("*",),
        description="origins allowed by CORS: `*` or a comma-separated list "
        "(`https://ehr.example.org`)",
    )
    playground: Switch = Field(
        default_factory=lambda data: data.get("auth") is AuthMode.OFF,
        description="serve the playground page",
        json_schema_extra=_shown_default("on when auth is off, else off"),
    )

    # --- FHIR servers of the EHR ---
    fhir_deadline_seconds: Seconds = Field(
        2.0, description="time budget for all FHIR fetches of one hook call"
    )
    fhir_connect_timeout_seconds: Seconds = Field(
        0.5, description="connect timeout per FHIR request, never beyond the deadline"
    )
    fhir_read_timeout_seconds: Seconds = Field(
        1.5, description="read timeout per FHIR request, never beyond the deadline"
    )
    fhir_max_retries: int = Field(
        2, ge=0, description="retries on connection errors and 502/503/504"
    )
    fhir_backoff_seconds: Seconds = Field(
        0.1, description="delay before the first FHIR retry; doubles each time"
    )
    fhir_max_pages: int = Field(10, ge=1, description="FHIR search pages followed per prefetch key")
    fhir_max_resources: int = Field(5000, ge=1, description="FHIR resources kept per prefetch key")
    fhir_max_response_bytes: int = Field(
        20 * 1024 * 1024, ge=1, description="largest FHIR response read"
    )
    fhir_max_connections: int = Field(
        16, ge=1, description="pooled connections and concurrent fetches per worker"
    )
    allow_http_fhir_server: Switch = Field(
        False, description="allow plain-http `fhirServer` (development only)"
    )
    fhir_server_allowlist: UrlList = Field(
        (),
        description="comma-separated FHIR base URLs the service may call",
        json_schema_extra=_shown_default("(any https)"),
    )

    # --- storage ---
    data_dir: DataDir = Field(
        Path("data"),
        description="the service's files: SQLite database, JWT replay store (relative to the "
        "working directory at start-up; `make run` creates it)",
        json_schema_extra=_shown_default("`./data`"),
    )
    database_url: DatabaseUrl = Field(
        default_factory=lambda data: sqlite_database_url(data.get("data_dir", Path("data"))),
        repr=False,  # may hold a password
        description="SQLAlchemy URL: a SQLite file or `postgresql+psycopg://...`",
        json_schema_extra=_shown_default(
            f"`sqlite:///<data dir>/{DATABASE_FILE_NAME}`", secret="url-password"
        ),
    )
    database_timeout_seconds: Seconds = Field(
        2.0,
        description="longest wait for the database (lock, connection, statement) during a request",
    )
    audit_retention_days: Days = Field(
        3650.0,
        description="age after which `mipomersen-cds audit purge` removes audit records and "
        "feedback",
    )

    # --- serving ---
    workers: int = Field(
        default_factory=default_workers,
        ge=1,
        description="gunicorn worker processes (`serve --workers` overrides)",
        json_schema_extra=_shown_default("2 per CPU core + 1"),
    )
    threads: int = Field(
        4,
        ge=1,
        description="threads per worker; they wait on EHR FHIR servers without holding a core "
        "(`serve --threads` overrides)",
    )
    drain_seconds: int = Field(
        0,
        ge=0,
        description="on SIGTERM, how long `/readyz` answers 503 (draining) while requests are "
        "still served, before gunicorn stops",
    )
    metrics_token: MetricsToken = Field(
        None,
        description="bearer token the Prometheus scraper sends to `GET /metrics` "
        "(16+ random characters)",
        json_schema_extra=_shown_default("(none: no `/metrics`)"),
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Read only what `load_settings` passes: no hidden read of `os.environ` or files."""
        return (init_settings,)

    @classmethod
    def variable(cls, name: str) -> str:
        """Return the environment variable of the field `name`."""
        if name not in cls.model_fields:
            raise KeyError(name)
        return f"{cls.model_config.get('env_prefix', '')}{name.upper()}"

    @classmethod
    def variables(cls) -> tuple[str, ...]:
        """Return every environment variable the service reads, in declaration order."""
        return tuple(cls.variable(name) for name in cls.model_fields)

    @cached_property
    def rules(self) -> RuleConfig:
        """Return the thresholds and windows the rules apply."""
        return _rule_config(self)

    @property
    def audit_retention(self) -> timedelta:
        """Return the age after which audit records and feedback are purged."""
        return timedelta(days=self.audit_retention_days)


# The setting of each analyte's default ULN (policy 4).
ULN_SETTINGS: Mapping[Analyte, str] = MappingProxyType(
    {
        Analyte.ALT: "default_uln_alt",
        Analyte.AST: "default_uln_ast",
        Analyte.TOTAL_BILIRUBIN: "default_uln_total_bilirubin",
        Analyte.DIRECT_BILIRUBIN: "default_uln_direct_bilirubin",
        Analyte.ALP: "default_uln_alp",
    }
)


def _rule_config(settings: Settings) -> RuleConfig:
    return RuleConfig(
        profile=settings.profile,
        elevation_multiple=settings.elevation_multiple,
        severe_elevation_multiple=settings.severe_elevation_multiple,
        bilirubin_multiple=settings.bilirubin_multiple,
        confirmation_window=timedelta(days=settings.confirmation_window_days),
        current_window=timedelta(days=settings.current_window_days),
        discontinue_window=timedelta(days=settings.discontinue_window_days),
        baseline_window=timedelta(days=settings.baseline_window_days),
        first_year=timedelta(days=settings.first_year_days),
        first_year_interval=timedelta(days=settings.first_year_interval_days),
        maintenance_interval=timedelta(days=settings.maintenance_interval_days),
        repeat_within=timedelta(days=settings.repeat_within_days),
        conservative_interval=timedelta(days=settings.conservative_interval_days),
        conservative_first_month=timedelta(days=settings.conservative_first_month_days),
        conservative_after_elevation=timedelta(days=settings.conservative_after_elevation_days),
        resolved_elevation_lookback=timedelta(days=settings.resolved_elevation_lookback_days),
        default_uln=MappingProxyType(
            {analyte: float(getattr(settings, name)) for analyte, name in ULN_SETTINGS.items()}
        ),
    )


# --- loading -------------------------------------------------------------------------------------

# MIPOMERSEN_CDS_TEST_* belong to the test harness, not to the service.
_HARNESS_PREFIX = "TEST_"


def load_settings(
    environ: Mapping[str, str], overrides: Mapping[str, str] | None = None
) -> Settings:
    """Build settings from `MIPOMERSEN_CDS_*` variables, `overrides` (unprefixed) winning.

    A bad value, an inconsistent pair of thresholds or a variable with the prefix that names no
    setting raises `ConfigurationError` naming the variable.
    """
    prefix = Settings.model_config.get("env_prefix", "")
    given = [key[len(prefix) :] for key in environ if key.startswith(prefix)]
    given += list(overrides or {})
    unknown = sorted(
        name
        for name in given
        if name.lower() not in Settings.model_fields and not name.startswith(_HARNESS_PREFIX)
    )
    if unknown:
        raise ConfigurationError(
            f"unknown setting {prefix}{unknown[0]}; known settings: "
            + ", ".join(Settings.variables())
        )
    values: dict[str, Any] = dict(_EnvironSource(Settings, environ)())
    values.update({name.lower(): value for name, value in (overrides or {}).items()})
    try:
        settings = Settings(**values)
        settings.rules  # noqa: B018 - built once now, so an inconsistent pair fails at start-up
    except ValidationError as error:
        raise ConfigurationError(_describe(error)) from None
    except ValueError as error:
        raise ConfigurationError(f"{prefix}*: inconsistent rule settings: {error}") from None
    if settings.playground and settings.auth is not AuthMode.OFF:
        # The playground calls hooks without a JWT and may pin the evaluation time.
        raise ConfigurationError(
            f"{Settings.variable('playground')}=on needs {Settings.variable('auth')}=off: the "
            "playground is for local development and must not be served by a deployed service"
        )
    return settings


def require_serving_settings(settings: Settings) -> None:
    """Refuse to serve HTTP with authentication on but no way to check a caller's JWT."""
    if settings.auth is AuthMode.OFF:
        return
    auth = Settings.variable("auth")
    advice = f"(or set {auth}=off, for local development only)"
    if not settings.trusted_issuers:
        raise ConfigurationError(
            f"{Settings.variable('trusted_issuers')} is not set: with {auth}=required (the "
            f"default) the service needs at least one trusted CDS client {advice}"
        )
    if settings.public_url is None:
        raise ConfigurationError(
            f"{Settings.variable('public_url')} is not set: with {auth}=required (the default) "
            f"the service must know its external URL to check each JWT's aud {advice}"
        )


def _describe(error: ValidationError) -> str:
    """Return the first refusal as a sentence naming the variable (never a secret's value)."""
    first = error.errors(include_url=False)[0]
    name = str(first["loc"][0]) if first["loc"] else ""
    variable = Settings.variable(name) if name in Settings.model_fields else name
    cause = first.get("ctx", {}).get("error")
    if isinstance(cause, _Problem):
        return f"{variable}{cause}"
    info = Settings.model_fields.get(name)
    secret = info is not None and _extra(info).get("secret") is not None
    shown = "" if secret else f"={first['input']!r}"
    return f"{variable}{shown} {_bounds_problem(first['type'], name, info)}"


def _bounds_problem(kind: str, name: str, info: FieldInfo | None) -> str:
    """Word a refusal by pydantic from the field's declared type and bounds."""
    if info is None:
        return "is not valid"
    bounds = _bounds(info)
    if info.annotation is int:
        if "le" in bounds:
            return f"must be a whole number from {bounds['ge']} to {bounds['le']}"
        return f"must be a whole number, at least {bounds['ge']}"
    if kind == "float_parsing":
        return "is not a number"
    if "le" in bounds:
        unit = " seconds" if name.endswith("_seconds") else ""
        return f"must be between {bounds['ge']:g} and {bounds['le']:g}{unit}"
    return "must be a positive number"


def _bounds(info: FieldInfo) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for constraint in info.metadata:
        for key in ("gt", "ge", "le"):
            value = getattr(constraint, key, None)
            if value is not None:
                found[key] = value
    return found


def _extra(info: FieldInfo) -> Mapping[str, Any]:
    extra = info.json_schema_extra
    return extra if isinstance(extra, Mapping) else {}


# --- showing the settings -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SettingRow:
    """One variable as `mipomersen-cds settings` shows it."""

    variable: str
    value: str
    default: str
    meaning: str
    set: bool = field(default=False)

    def to_json(self) -> dict[str, Any]:
        """Return the row as a JSON object."""
        return {
            "variable": self.variable,
            "value": self.value,
            "default": self.default,
            "meaning": self.meaning,
            "set": self.set,
        }


def settings_report(settings: Settings, given: Iterable[str] = ()) -> list[SettingRow]:
    """Return every variable with its value (secrets masked), default and meaning.

    `given` names the variables set in the environment (their rows say `set`).
    """
    given_set = set(given)
    rows = []
    for name, info in Settings.model_fields.items():
        variable = Settings.variable(name)
        rows.append(
            SettingRow(
                variable=variable,
                value=_masked(info, _shown(getattr(settings, name))),
                default=_default_text(name, info),
                meaning=_meaning(info),
                set=variable in given_set,
            )
        )
    return rows


def settings_markdown() -> str:
    """Return the README's Configuration table: every variable, its default and meaning."""
    lines = ["| Variable | Default | Meaning |", "|---|---|---|"]
    for name, info in Settings.model_fields.items():
        default = _default_text(name, info)
        if "shown_default" not in _extra(info):
            default = f"`{default}`"
        default = default.replace("|", "\\|")
        meaning = _meaning(info).replace("|", "\\|")
        lines.append(f"| `{Settings.variable(name)}` | {default} | {meaning} |")
    return "\n".join(lines) + "\n"


def settings_help() -> str:
    """Return every variable with its default and meaning, one a line, for `--help`."""
    return "\n".join(
        f"  {Settings.variable(name)} (default {_default_text(name, info)}): {_meaning(info)}"
        for name, info in Settings.model_fields.items()
    )


def _meaning(info: FieldInfo) -> str:
    """Return the field's description and its declared bounds."""
    bounds = _bounds(info)
    if "le" in bounds:
        return f"{info.description} ({bounds['ge']:g}-{bounds['le']:g})"
    if "ge" in bounds:
        return f"{info.description} (at least {bounds['ge']:g})"
    if "gt" in bounds:
        return f"{info.description} (above {bounds['gt']:g})"
    return info.description or ""


def _default_text(name: str, info: FieldInfo) -> str:
    shown = _extra(info).get("shown_default")
    if isinstance(shown, str):
        return shown
    return _shown(getattr(_defaults(), name))


@cache
def _defaults() -> Settings:
    return Settings()


def _shown(value: Any) -> str:
    """Return a value as it would be written in its variable."""
    if isinstance(value, SecretStr):
        return _MASK
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, tuple):
        value = ",".join(value)
    elif isinstance(value, MedicationCodes):
        value = _render_medication_codes(value)
    elif isinstance(value, Mapping):
        value = _render_issuers(value)
    return "(none)" if value is None or value == "" else str(value)


def _masked(info: FieldInfo, text: str) -> str:
    if _extra(info).get("secret") == "url-password":
        parts = urlsplit(text)
        if parts.password:
            return text.replace(f":{parts.password}@", f":{_MASK}@", 1)
    return text


def _main(arguments: list[str]) -> int:
    if arguments != ["--markdown"]:
        sys.stderr.write("usage: python -m cds_service.settings --markdown\n")
        return 2
    sys.stdout.write(settings_markdown())
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(_main(sys.argv[1:]))
