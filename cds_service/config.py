"""Service settings: defaults, then `MIPOMERSEN_CDS_*` environment variables, then overrides.

Every rule threshold and window comes from `RuleConfig`'s own fields, so a new threshold is
configurable without touching this module: a float field `elevation_multiple` is read from
`MIPOMERSEN_CDS_ELEVATION_MULTIPLE`, a duration `confirmation_window` from
`MIPOMERSEN_CDS_CONFIRMATION_WINDOW_DAYS`, a default ULN from `MIPOMERSEN_CDS_DEFAULT_ULN_ALT`.
Values are validated once, at start-up; a bad one raises `ConfigurationError` naming it.
Storage settings (data directory, database URL, timeout, audit retention) are documented in the
README's "Feedback and audit" section.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from fhir_mappings.values import Analyte, MedicationCodes

from .errors import ConfigurationError
from .rules.config import DEFAULT_ULN, Profile, RuleConfig
from .security_config import (
    SECURITY_SETTING_NAMES,
    AuthMode,
    SecuritySettings,
    parse_security_settings,
)

PREFIX = "MIPOMERSEN_CDS_"
DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
DEFAULT_DATA_DIR = Path("data")  # relative to the working directory at start-up
DATABASE_FILE_NAME = "mipomersen-cds.sqlite3"
DEFAULT_DATABASE_TIMEOUT_SECONDS = 2.0
DEFAULT_AUDIT_RETENTION = timedelta(days=3650)


def sqlite_database_url(data_dir: Path) -> str:
    """Return the URL of the service's SQLite database in `data_dir` (the default database)."""
    return f"sqlite:///{data_dir / DATABASE_FILE_NAME}"


@dataclass(frozen=True, slots=True)
class FhirClientSettings:
    """Limits on talking to an EHR's FHIR server (MIPOMERSEN_CDS_FHIR_* settings)."""

    deadline: float = 2.0  # seconds for every fetch of one hook call together
    connect_timeout: float = 0.5
    read_timeout: float = 1.5
    max_retries: int = 2
    backoff: float = 0.1  # first retry delay; doubles each time
    max_pages: int = 10  # per prefetch key
    max_resources: int = 5000  # per prefetch key
    max_response_bytes: int = 20 * 1024 * 1024  # per response
    max_connections: int = 16  # pooled connections and concurrent fetches per worker
    allow_http: bool = False  # plain http only for local development and tests
    allowlist: tuple[str, ...] = ()  # FHIR base URLs this service may call; empty: any https


def default_workers() -> int:
    """Return gunicorn's usual worker count for this machine: two per core, plus one."""
    return 2 * (os.cpu_count() or 1) + 1


MIN_METRICS_TOKEN_LENGTH = 16


@dataclass(frozen=True, slots=True)
class ServingSettings:
    """How `mipomersen-cds serve` runs gunicorn, and who may read `/metrics`."""

    workers: int = field(default_factory=default_workers)
    threads: int = 4  # per worker; threads wait on EHR FHIR servers without holding a core
    metrics_token: str | None = field(default=None, repr=False)  # None: no /metrics


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the service is configured with; built by `load_settings`."""

    rules: RuleConfig = field(default_factory=RuleConfig)
    medication_codes: MedicationCodes = field(default_factory=MedicationCodes)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    fhir: FhirClientSettings = field(default_factory=FhirClientSettings)
    data_dir: Path = DEFAULT_DATA_DIR  # the service's own files (database, JWT replay store)
    security: SecuritySettings = field(default_factory=SecuritySettings)
    # May hold a password: kept out of repr() so a logged Settings never shows it.
    database_url: str = field(default=sqlite_database_url(DEFAULT_DATA_DIR), repr=False)
    database_timeout_seconds: float = DEFAULT_DATABASE_TIMEOUT_SECONDS
    audit_retention: timedelta = DEFAULT_AUDIT_RETENTION
    serving: ServingSettings = field(default_factory=ServingSettings)
    # The developer's page at /playground (cds_service.playground); only with auth off.
    playground: bool = False


_FHIR_SPECIAL_NAMES = {"allow_http": "ALLOW_HTTP_FHIR_SERVER", "allowlist": "FHIR_SERVER_ALLOWLIST"}


def _fhir_variable(field_name: str, field_type: object) -> str:
    if field_name in _FHIR_SPECIAL_NAMES:
        return _FHIR_SPECIAL_NAMES[field_name]
    suffix = "_SECONDS" if field_type == "float" else ""
    return f"FHIR_{field_name.upper()}{suffix}"


def setting_names() -> tuple[str, ...]:
    """Return every environment variable the service reads, for documentation and `--help`."""
    names = ["PROFILE", "MEDICATION_CODES", "MAX_BODY_BYTES", *SECURITY_SETTING_NAMES]
    names += ["DATA_DIR", "DATABASE_URL", "DATABASE_TIMEOUT_SECONDS", "AUDIT_RETENTION_DAYS"]
    names += ["WORKERS", "THREADS", "METRICS_TOKEN", "PLAYGROUND"]
    names.extend(_fhir_variable(f.name, f.type) for f in dataclasses.fields(FhirClientSettings))
    for rule_field in dataclasses.fields(RuleConfig):
        if rule_field.type in ("float", "timedelta"):
            names.append(_rule_variable(rule_field.name, rule_field.type))
    names.extend(_uln_variable(analyte) for analyte in DEFAULT_ULN)
    return tuple(PREFIX + name for name in names)


def load_settings(
    environ: Mapping[str, str], overrides: Mapping[str, str] | None = None
) -> Settings:
    """Build settings from `MIPOMERSEN_CDS_*` variables, `overrides` (unprefixed) winning."""
    values = {key[len(PREFIX) :]: value for key, value in environ.items() if key.startswith(PREFIX)}
    values.update(overrides or {})
    known = {name[len(PREFIX) :] for name in setting_names()}
    rule_values: dict[str, object] = {}
    if "PROFILE" in values:
        rule_values["profile"] = _parse_profile(values["PROFILE"])
    for rule_field in dataclasses.fields(RuleConfig):
        if rule_field.type not in ("float", "timedelta"):
            continue
        name = _rule_variable(rule_field.name, rule_field.type)
        if name in values:
            number = _parse_positive_number(name, values[name])
            rule_values[rule_field.name] = (
                timedelta(days=number) if rule_field.type == "timedelta" else number
            )
    default_uln = dict(DEFAULT_ULN)
    for analyte in DEFAULT_ULN:
        name = _uln_variable(analyte)
        if name in values:
            default_uln[analyte] = _parse_positive_number(name, values[name])
    rule_values["default_uln"] = MappingProxyType(default_uln)
    try:
        rules = RuleConfig(**rule_values)  # type: ignore[arg-type]
    except ValueError as error:
        raise ConfigurationError(f"{PREFIX}*: inconsistent rule settings: {error}") from None
    max_body = DEFAULT_MAX_BODY_BYTES
    if "MAX_BODY_BYTES" in values:
        max_body = int(_parse_positive_number("MAX_BODY_BYTES", values["MAX_BODY_BYTES"]))
    codes = _parse_medication_codes(values.get("MEDICATION_CODES", ""))
    fhir = _parse_fhir_settings(values)
    data_dir, database_url, database_timeout, audit_retention = _parse_storage(values)
    security = parse_security_settings(values)
    serving = _parse_serving(values)
    playground = _parse_playground(values, security)
    # A misspelt variable would silently leave a safety threshold at its default: refuse it.
    # MIPOMERSEN_CDS_TEST_* belong to the test harness, not to the service.
    unknown = sorted(name for name in set(values) - known if not name.startswith("TEST_"))
    if unknown:
        raise ConfigurationError(
            f"unknown setting {PREFIX}{unknown[0]}; known settings: " + ", ".join(setting_names())
        )
    return Settings(
        rules=rules,
        medication_codes=codes,
        max_body_bytes=max_body,
        fhir=fhir,
        data_dir=data_dir,
        security=security,
        database_url=database_url,
        database_timeout_seconds=database_timeout,
        audit_retention=audit_retention,
        serving=serving,
        playground=playground,
    )


def _parse_playground(values: Mapping[str, str], security: SecuritySettings) -> bool:
    """Return whether /playground is served: on by default with auth off, never with auth on.

    The playground calls hooks without a JWT and may pin the evaluation time, so a deployed
    service (authentication on) must not expose it.
    """
    auth_off = security.auth is AuthMode.OFF
    if "PLAYGROUND" not in values:
        return auth_off
    text = values["PLAYGROUND"].strip().lower()
    if text not in ("on", "off"):
        raise ConfigurationError(f"{PREFIX}PLAYGROUND={values['PLAYGROUND']!r} must be on or off")
    if text == "on" and not auth_off:
        raise ConfigurationError(
            f"{PREFIX}PLAYGROUND=on needs {PREFIX}AUTH=off: the playground is for local "
            "development and must not be served by a deployed service"
        )
    return text == "on"


def _parse_serving(values: Mapping[str, str]) -> ServingSettings:
    parsed: dict[str, Any] = {}
    for name in ("WORKERS", "THREADS"):
        if name in values:
            parsed[name.lower()] = _parse_count(name, values[name], minimum=1)
    token = values.get("METRICS_TOKEN", "").strip()
    if token:
        if len(token) < MIN_METRICS_TOKEN_LENGTH:
            raise ConfigurationError(
                f"{PREFIX}METRICS_TOKEN is too short: use at least "
                f"{MIN_METRICS_TOKEN_LENGTH} random characters"
            )
        parsed["metrics_token"] = token
    return ServingSettings(**parsed)


def _parse_fhir_settings(values: Mapping[str, str]) -> FhirClientSettings:
    parsed: dict[str, object] = {}
    for fhir_field in dataclasses.fields(FhirClientSettings):
        name = _fhir_variable(fhir_field.name, fhir_field.type)
        if name not in values:
            continue
        text = values[name]
        if fhir_field.type == "bool":
            parsed[fhir_field.name] = _parse_bool(name, text)
        elif fhir_field.type == "float":
            parsed[fhir_field.name] = _parse_positive_number(name, text)
        elif fhir_field.type == "int":
            minimum = 0 if fhir_field.name == "max_retries" else 1
            parsed[fhir_field.name] = _parse_count(name, text, minimum=minimum)
        else:
            parsed[fhir_field.name] = _parse_url_list(name, text)
    return FhirClientSettings(**parsed)  # type: ignore[arg-type]


def _parse_bool(name: str, text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off", ""):
        return False
    raise ConfigurationError(f"{PREFIX}{name}={text!r} must be true or false")


def _parse_count(name: str, text: str, *, minimum: int) -> int:
    try:
        number = int(text)
    except ValueError:
        raise ConfigurationError(f"{PREFIX}{name}={text!r} is not a whole number") from None
    if number < minimum:
        raise ConfigurationError(f"{PREFIX}{name}={text!r} must be at least {minimum}")
    return number


def _parse_url_list(name: str, text: str) -> tuple[str, ...]:
    urls = tuple(part.strip().rstrip("/") for part in text.split(",") if part.strip())
    for url in urls:
        if not url.startswith(("https://", "http://")):
            raise ConfigurationError(f"{PREFIX}{name} entry {url!r} is not an http(s) URL")
    return urls


def _rule_variable(field_name: str, field_type: object) -> str:
    suffix = "_DAYS" if field_type == "timedelta" else ""
    return field_name.upper() + suffix


def _uln_variable(analyte: Analyte) -> str:
    return "DEFAULT_ULN_" + analyte.name


def _parse_profile(text: str) -> Profile:
    try:
        return Profile(text.strip().lower())
    except ValueError:
        choices = ", ".join(profile.value for profile in Profile)
        raise ConfigurationError(
            f"{PREFIX}PROFILE={text!r} is not a rule profile; choose one of {choices}"
        ) from None


def _parse_positive_number(name: str, text: str) -> float:
    try:
        number = float(text)
    except ValueError:
        raise ConfigurationError(f"{PREFIX}{name}={text!r} is not a number") from None
    if not math.isfinite(number) or number <= 0:
        raise ConfigurationError(f"{PREFIX}{name}={text!r} must be a positive number")
    return number


def _parse_storage(values: Mapping[str, str]) -> tuple[Path, str, float, timedelta]:
    """Return the data directory (made absolute now), database URL, timeout and retention."""
    data_dir = DEFAULT_DATA_DIR
    if "DATA_DIR" in values:
        if not values["DATA_DIR"].strip():
            raise ConfigurationError(f"{PREFIX}DATA_DIR must name a directory")
        data_dir = Path(values["DATA_DIR"])
    data_dir = data_dir.absolute()
    database_url = (
        _parse_database_url(values["DATABASE_URL"])
        if "DATABASE_URL" in values
        else sqlite_database_url(data_dir)
    )
    timeout = DEFAULT_DATABASE_TIMEOUT_SECONDS
    if "DATABASE_TIMEOUT_SECONDS" in values:
        timeout = _parse_positive_number(
            "DATABASE_TIMEOUT_SECONDS", values["DATABASE_TIMEOUT_SECONDS"]
        )
    retention = DEFAULT_AUDIT_RETENTION
    if "AUDIT_RETENTION_DAYS" in values:
        days = _parse_positive_number("AUDIT_RETENTION_DAYS", values["AUDIT_RETENTION_DAYS"])
        retention = timedelta(days=days)
    return data_dir, database_url, timeout, retention


def _parse_database_url(text: str) -> str:
    """Check a SQLAlchemy URL: a SQLite file, or PostgreSQL through psycopg 3.

    `postgresql://` and `postgres://` are read as `postgresql+psycopg://`. The value is never
    quoted in a message: it may hold a password.
    """
    name = f"{PREFIX}DATABASE_URL"
    try:
        url = make_url(text.strip())
    except ArgumentError:
        raise ConfigurationError(
            f"{name} is not a database URL; use sqlite:///<file> or "
            "postgresql+psycopg://<user>@<host>/<database>"
        ) from None
    backend, _, driver = url.drivername.partition("+")
    if backend in ("postgresql", "postgres") and driver in ("", "psycopg"):
        url = url.set(drivername="postgresql+psycopg")
    elif backend == "sqlite" and driver in ("", "pysqlite"):
        if url.database in (None, "", ":memory:"):
            raise ConfigurationError(f"{name} must name a SQLite file, not an in-memory database")
    else:
        raise ConfigurationError(
            f"{name} must be a sqlite:/// or postgresql+psycopg:// URL (found {url.drivername})"
        )
    return url.render_as_string(hide_password=False)


def _parse_medication_codes(text: str) -> MedicationCodes:
    """Parse `system|code` pairs separated by commas, e.g. `http://www.nlm.nih.gov/research/umls/rxnorm|123`."""
    codes: set[tuple[str, str]] = set()
    for item in filter(None, (part.strip() for part in text.split(","))):
        system, separator, code = item.rpartition("|")
        if not separator or not system or not code:
            raise ConfigurationError(
                f"{PREFIX}MEDICATION_CODES entry {item!r} must look like system|code"
            )
        codes.add((system, code))
    return MedicationCodes(codes=frozenset(codes))
