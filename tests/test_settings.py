"""MIPOMERSEN_CDS_* settings: every rule threshold is configurable, every bad value named."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from cds_service.config import DEFAULT_MAX_BODY_BYTES, load_settings, setting_names
from cds_service.errors import ConfigurationError
from cds_service.rules import Profile, RuleConfig
from fhir_mappings.values import Analyte


def test_defaults_are_the_binding_policy() -> None:
    settings = load_settings({})
    assert settings.rules == RuleConfig()
    assert settings.rules.profile is Profile.LABEL
    assert settings.max_body_bytes == DEFAULT_MAX_BODY_BYTES
    assert settings.medication_codes.codes == frozenset()


@pytest.mark.parametrize(
    ("variable", "value", "check"),
    [
        pytest.param(
            "PROFILE",
            "Conservative",
            lambda s: s.rules.profile is Profile.CONSERVATIVE,
            id="profile-any-case",
        ),
        pytest.param(
            "ELEVATION_MULTIPLE",
            "2.5",
            lambda s: s.rules.elevation_multiple == 2.5,
            id="float-threshold",
        ),
        pytest.param(
            "CONFIRMATION_WINDOW_DAYS",
            "10",
            lambda s: s.rules.confirmation_window == timedelta(days=10),
            id="window-days",
        ),
        pytest.param(
            "DEFAULT_ULN_ALT",
            "33",
            lambda s: s.rules.default_uln[Analyte.ALT] == 33,
            id="default-uln",
        ),
        pytest.param("MAX_BODY_BYTES", "2048", lambda s: s.max_body_bytes == 2048, id="body-size"),
        pytest.param(
            "FHIR_DEADLINE_SECONDS", "0.8", lambda s: s.fhir.deadline == 0.8, id="fhir-deadline"
        ),
        pytest.param("FHIR_MAX_RETRIES", "0", lambda s: s.fhir.max_retries == 0, id="no-retries"),
        pytest.param(
            "ALLOW_HTTP_FHIR_SERVER", "TRUE", lambda s: s.fhir.allow_http, id="allow-http"
        ),
        pytest.param(
            "FHIR_SERVER_ALLOWLIST",
            "https://a.example/fhir/, https://b.example/r4",
            lambda s: s.fhir.allowlist == ("https://a.example/fhir", "https://b.example/r4"),
            id="allowlist",
        ),
        pytest.param(
            "MEDICATION_CODES",
            "http://www.nlm.nih.gov/research/umls/rxnorm|999, urn:oid:local|K-1",
            lambda s: (
                s.medication_codes.codes
                == {
                    ("http://www.nlm.nih.gov/research/umls/rxnorm", "999"),
                    ("urn:oid:local", "K-1"),
                }
            ),
            id="medication-codes",
        ),
    ],
)
def test_environment_variable_sets_the_value(variable: str, value: str, check: object) -> None:
    settings = load_settings({f"MIPOMERSEN_CDS_{variable}": value})
    assert check(settings)  # type: ignore[operator]


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        pytest.param("PROFILE", "loose", "is not a rule profile", id="profile"),
        pytest.param("ELEVATION_MULTIPLE", "three", "is not a number", id="not-a-number"),
        pytest.param("BASELINE_WINDOW_DAYS", "0", "positive", id="zero-window"),
        pytest.param("BILIRUBIN_MULTIPLE", "nan", "positive", id="nan"),
        pytest.param("ELEVATION_MULTIPLE", "6", "inconsistent", id="3x-above-5x"),
        pytest.param("MEDICATION_CODES", "C10AX11", "system|code", id="code-without-system"),
        pytest.param("PROFIL", "label", "unknown setting MIPOMERSEN_CDS_PROFIL", id="typo"),
        pytest.param("ALLOW_HTTP_FHIR_SERVER", "maybe", "true or false", id="not-a-bool"),
        pytest.param("FHIR_MAX_PAGES", "0", "at least 1", id="zero-pages"),
        pytest.param("FHIR_MAX_RETRIES", "two", "whole number", id="retries-not-int"),
        pytest.param(
            "FHIR_SERVER_ALLOWLIST",
            "ehr.example.org",
            r"not an http\(s\) URL",
            id="allowlist-without-scheme",
        ),
    ],
)
def test_bad_value_is_refused_naming_the_variable(variable: str, value: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as error:
        load_settings({f"MIPOMERSEN_CDS_{variable}": value})
    assert "MIPOMERSEN_CDS_" in str(error.value)


def test_overrides_win_over_the_environment() -> None:
    settings = load_settings({"MIPOMERSEN_CDS_PROFILE": "conservative"}, {"PROFILE": "label"})
    assert settings.rules.profile is Profile.LABEL


def test_every_duration_and_threshold_of_the_rules_has_a_variable() -> None:
    names = set(setting_names())
    for name in (
        "CONFIRMATION_WINDOW_DAYS",
        "MAINTENANCE_INTERVAL_DAYS",
        "SEVERE_ELEVATION_MULTIPLE",
        "DEFAULT_ULN_TOTAL_BILIRUBIN",
        "RESOLVED_ELEVATION_LOOKBACK_DAYS",
    ):
        assert f"MIPOMERSEN_CDS_{name}" in names


def test_test_harness_variables_are_not_settings() -> None:
    load_settings({"MIPOMERSEN_CDS_TEST_DATABASE_URL": "postgresql://127.0.0.1/test"})


# --- storage -------------------------------------------------------------------------------------


def test_database_defaults_to_a_sqlite_file_in_the_data_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings({})
    assert settings.data_dir == tmp_path / "data"
    assert settings.database_url == f"sqlite:///{tmp_path}/data/mipomersen-cds.sqlite3"
    assert settings.database_timeout_seconds == 2
    assert settings.audit_retention == timedelta(days=3650)


@pytest.mark.parametrize(
    ("variables", "check"),
    [
        pytest.param(
            {"DATA_DIR": "/srv/cds"},
            lambda s: s.database_url == "sqlite:////srv/cds/mipomersen-cds.sqlite3",
            id="data-dir-moves-the-database",
        ),
        pytest.param(
            {"DATA_DIR": "/srv/cds", "DATABASE_URL": "sqlite:////var/db/cds.sqlite3"},
            lambda s: s.database_url == "sqlite:////var/db/cds.sqlite3",
            id="url-wins-over-data-dir",
        ),
        pytest.param(
            {"DATABASE_URL": "postgresql://cds:secret@db.example.org/cds"},
            lambda s: s.database_url == "postgresql+psycopg://cds:secret@db.example.org/cds",
            id="postgresql-means-psycopg-3",
        ),
        pytest.param(
            {"DATABASE_URL": "postgres://db.example.org/cds"},
            lambda s: s.database_url == "postgresql+psycopg://db.example.org/cds",
            id="postgres-alias",
        ),
        pytest.param(
            {"DATABASE_TIMEOUT_SECONDS": "0.5"},
            lambda s: s.database_timeout_seconds == 0.5,
            id="timeout",
        ),
        pytest.param(
            {"AUDIT_RETENTION_DAYS": "2555"},
            lambda s: s.audit_retention == timedelta(days=2555),
            id="retention",
        ),
    ],
)
def test_storage_variables(variables: dict[str, str], check: object) -> None:
    settings = load_settings({f"MIPOMERSEN_CDS_{key}": value for key, value in variables.items()})
    assert check(settings)  # type: ignore[operator]


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        pytest.param("DATABASE_URL", "mysql://db/cds", "sqlite:/// or postgresql", id="mysql"),
        pytest.param("DATABASE_URL", "postgresql+psycopg2://db/cds", "psycopg", id="psycopg2"),
        pytest.param("DATABASE_URL", "sqlite://", "in-memory", id="in-memory"),
        pytest.param("DATABASE_URL", "not a url", "not a database URL", id="not-a-url"),
        pytest.param("DATA_DIR", " ", "must name a directory", id="empty-data-dir"),
        pytest.param("AUDIT_RETENTION_DAYS", "0", "positive", id="zero-retention"),
        pytest.param("DATABASE_TIMEOUT_SECONDS", "-1", "positive", id="negative-timeout"),
    ],
)
def test_bad_storage_value_is_refused(variable: str, value: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as error:
        load_settings({f"MIPOMERSEN_CDS_{variable}": value})
    assert f"MIPOMERSEN_CDS_{variable}" in str(error.value)


def test_database_password_never_shows_in_messages_or_repr() -> None:
    with pytest.raises(ConfigurationError) as error:
        load_settings({"MIPOMERSEN_CDS_DATABASE_URL": "mysql://cds:hunter2@db/cds"})
    assert "hunter2" not in str(error.value)
    settings = load_settings({"MIPOMERSEN_CDS_DATABASE_URL": "postgresql://cds:hunter2@db/cds"})
    assert "hunter2" not in repr(settings)
