"""MIPOMERSEN_CDS_* settings: every rule threshold is configurable, every bad value named."""

from __future__ import annotations

import ast
import dataclasses
import json
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from cds_service.cli.main import main
from cds_service.errors import ConfigurationError
from cds_service.rules import Profile, RuleConfig
from cds_service.rules.config import DEFAULT_ULN
from cds_service.settings import Settings, load_settings, settings_markdown
from fhir_mappings.values import Analyte
from tests.clinical_policy_tables import SETTING_SOURCES


def test_defaults_are_the_binding_policy() -> None:
    settings = load_settings({})
    assert settings.rules == RuleConfig()
    assert settings.rules.profile is Profile.LABEL
    assert settings.max_body_bytes == 10 * 1024 * 1024
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
            "FHIR_DEADLINE_SECONDS",
            "0.8",
            lambda s: s.fhir_deadline_seconds == 0.8,
            id="fhir-deadline",
        ),
        pytest.param("FHIR_MAX_RETRIES", "0", lambda s: s.fhir_max_retries == 0, id="no-retries"),
        pytest.param(
            "ALLOW_HTTP_FHIR_SERVER", "TRUE", lambda s: s.allow_http_fhir_server, id="allow-http"
        ),
        pytest.param(
            "FHIR_SERVER_ALLOWLIST",
            "https://a.example/fhir/, https://b.example/r4",
            lambda s: s.fhir_server_allowlist == ("https://a.example/fhir", "https://b.example/r4"),
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
    names = set(Settings.variables())
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


# --- the declarative model -----------------------------------------------------------------------

README_PATH = Path(__file__).parents[1] / "README.md"


def test_every_variable_is_declared_with_a_meaning() -> None:
    for name, info in Settings.model_fields.items():
        assert info.description, f"{Settings.variable(name)} has no meaning"
    assert len(Settings.variables()) == len(set(Settings.variables())) == 53


def test_the_readme_table_is_the_one_generated_from_the_model() -> None:
    readme = README_PATH.read_text()
    start = readme.index("<!-- generated: settings")
    table = readme[readme.index("\n", start) + 1 : readme.index("<!-- end generated: settings")]
    assert table == settings_markdown()


def test_every_rule_field_is_set_from_its_variable() -> None:
    changed = {
        name: ("conservative" if name == "profile" else str(getattr(Settings(), name) / 2))
        for name in SETTING_SOURCES
    }
    changed["elevation_multiple"] = "2"  # stays at most the severe multiple (2.5)
    rules = load_settings({}, {name.upper(): value for name, value in changed.items()}).rules
    defaults = RuleConfig()
    for rule_field in dataclasses.fields(RuleConfig):
        name = rule_field.name
        assert getattr(rules, name) != getattr(defaults, name), name
    assert rules.default_uln == {analyte: uln / 2 for analyte, uln in DEFAULT_ULN.items()}


@pytest.mark.parametrize(
    ("variables", "playground"),
    [
        pytest.param({}, False, id="auth-on-no-playground"),
        pytest.param({"AUTH": "off"}, True, id="auth-off-playground"),
        pytest.param({"AUTH": "off", "PLAYGROUND": "off"}, False, id="turned-off"),
    ],
)
def test_playground_defaults_to_on_only_without_authentication(
    variables: dict[str, str], playground: bool
) -> None:
    settings = load_settings({f"MIPOMERSEN_CDS_{key}": value for key, value in variables.items()})
    assert settings.playground is playground


def test_an_unknown_override_is_refused_too() -> None:
    with pytest.raises(ConfigurationError, match="unknown setting MIPOMERSEN_CDS_PROFLE"):
        load_settings({}, {"PROFLE": "label"})


def test_an_empty_switch_means_false() -> None:
    assert not load_settings({"MIPOMERSEN_CDS_ALLOW_HTTP_FHIR_SERVER": ""}).allow_http_fhir_server


def test_a_short_metrics_token_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigurationError, match="METRICS_TOKEN is too short") as error:
        load_settings({"MIPOMERSEN_CDS_METRICS_TOKEN": "hunter2"})
    assert "hunter2" not in str(error.value)


def _string_literals(tree: ast.Module) -> Iterator[ast.Constant]:
    """Yield the string constants of a module that are not docstrings."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) not in docstrings:
                yield node


def test_only_the_settings_model_spells_out_a_variable_name() -> None:
    package = Path(__file__).parents[1] / "cds_service"
    spelt = [
        f"{path.relative_to(package)}:{node.lineno}"
        for path in sorted(package.rglob("*.py"))
        if path.name != "settings.py"
        for node in _string_literals(ast.parse(path.read_text()))
        if "MIPOMERSEN_CDS_" in node.value
    ]
    assert spelt == []


# --- `mipomersen-cds settings` -------------------------------------------------------------------

SECRETS = {
    "MIPOMERSEN_CDS_METRICS_TOKEN": "m3tr1cs-t0ken-s3cret-0123456789",
    "MIPOMERSEN_CDS_DATABASE_URL": "postgresql://cds:hunter2@db.example.org/cds",
    "MIPOMERSEN_CDS_REPLAY_STORE": "redis://:redispass@cache.example.org:6379/0",
}


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for key in list(os.environ):
        if key.startswith("MIPOMERSEN_CDS_"):
            monkeypatch.delenv(key)
    return monkeypatch


def test_settings_command_prints_every_variable_and_masks_secrets(
    clean_environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key, value in {**SECRETS, "MIPOMERSEN_CDS_PROFILE": "conservative"}.items():
        clean_environment.setenv(key, value)
    assert main(["settings"]) == 0
    out = capsys.readouterr().out
    for variable in Settings.variables():
        assert f"\n{variable}=" in f"\n{out}"
    assert "MIPOMERSEN_CDS_PROFILE=conservative  (set; default label)" in out
    assert "MIPOMERSEN_CDS_DATABASE_URL=postgresql+psycopg://cds:********@db.example.org/cds" in out
    assert "MIPOMERSEN_CDS_REPLAY_STORE=redis://:********@cache.example.org:6379/0" in out
    for secret in ("m3tr1cs", "hunter2", "redispass"):
        assert secret not in out


def test_settings_command_as_json(
    clean_environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    token = "MIPOMERSEN_CDS_METRICS_TOKEN"
    clean_environment.setenv(token, SECRETS[token])
    assert main(["settings", "--format", "json"]) == 0
    rows = {row["variable"]: row for row in json.loads(capsys.readouterr().out)}
    assert list(rows) == list(Settings.variables())
    assert rows["MIPOMERSEN_CDS_METRICS_TOKEN"]["value"] == "********"
    assert rows["MIPOMERSEN_CDS_METRICS_TOKEN"]["set"] is True
    assert rows["MIPOMERSEN_CDS_MAX_JSON_DEPTH"] == {
        "variable": "MIPOMERSEN_CDS_MAX_JSON_DEPTH",
        "value": "64",
        "default": "64",
        "meaning": "deepest nesting of arrays and objects accepted (400 above) (8-500)",
        "set": False,
    }


def test_settings_command_names_a_bad_variable(
    clean_environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clean_environment.setenv("MIPOMERSEN_CDS_PROFLE", "label")
    assert main(["settings"]) == 2
    assert "unknown setting MIPOMERSEN_CDS_PROFLE" in capsys.readouterr().err


def test_help_lists_every_variable(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for variable in Settings.variables():
        assert f"  {variable} (default " in out
