"""Service settings: defaults, then `MIPOMERSEN_CDS_*` environment variables, then overrides.

Every rule threshold and window comes from `RuleConfig`'s own fields, so a new threshold is
configurable without touching this module: a float field `elevation_multiple` is read from
`MIPOMERSEN_CDS_ELEVATION_MULTIPLE`, a duration `confirmation_window` from
`MIPOMERSEN_CDS_CONFIRMATION_WINDOW_DAYS`, a default ULN from `MIPOMERSEN_CDS_DEFAULT_ULN_ALT`.
Values are validated once, at start-up; a bad one raises `ConfigurationError` naming it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType

from fhir_mappings.values import Analyte, MedicationCodes

from .errors import ConfigurationError
from .rules.config import DEFAULT_ULN, Profile, RuleConfig
from .security_config import SECURITY_SETTING_NAMES, SecuritySettings, parse_security_settings

PREFIX = "MIPOMERSEN_CDS_"
DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
DEFAULT_DATA_DIR = Path("data")  # relative to the working directory


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the service is configured with; built by `load_settings`."""

    rules: RuleConfig = field(default_factory=RuleConfig)
    medication_codes: MedicationCodes = field(default_factory=MedicationCodes)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    data_dir: Path = DEFAULT_DATA_DIR  # the service's own files (JWT replay store, ...)
    security: SecuritySettings = field(default_factory=SecuritySettings)


def setting_names() -> tuple[str, ...]:
    """Return every environment variable the service reads, for documentation and `--help`."""
    names = ["PROFILE", "MEDICATION_CODES", "MAX_BODY_BYTES", "DATA_DIR", *SECURITY_SETTING_NAMES]
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
    data_dir = Path(values.get("DATA_DIR", "").strip() or DEFAULT_DATA_DIR)
    security = parse_security_settings(values)
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
        data_dir=data_dir,
        security=security,
    )


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
