"""Security settings: safe defaults, every variable parsed, every bad value refused by name."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cds_service.errors import ConfigurationError
from cds_service.settings import (
    AuthMode,
    Settings,
    TrustedIssuer,
    jwk_problem,
    load_settings,
    require_serving_settings,
)
from tests.tokens import SANDBOX_ISS, SANDBOX_JKU, ec_key, jwks, rsa_key

PUBLIC_JWK = ec_key().public_jwk()


def security(**variables: str) -> Settings:
    return load_settings({f"MIPOMERSEN_CDS_{name}": value for name, value in variables.items()})


def issuers(entry: dict[str, Any], iss: str = SANDBOX_ISS) -> str:
    return json.dumps({iss: entry})


def test_defaults_require_authentication_with_the_recommended_algorithms() -> None:
    settings = load_settings({})
    assert settings == Settings()
    assert settings.auth is AuthMode.REQUIRED
    assert settings.jwt_algorithms == ("ES384", "RS384")
    assert settings.jwt_leeway_seconds == 30
    assert settings.jwt_max_lifetime_seconds == 3600
    assert settings.replay_store == "sqlite"
    assert settings.cors_origins == ("*",)
    assert settings.max_json_depth == 64
    assert settings.trusted_issuers == {} and settings.public_url is None
    assert settings.data_dir == Path("data").absolute()  # made absolute at start-up


def test_every_security_variable_is_documented() -> None:
    names = set(Settings.variables())
    for name in (
        "AUTH",
        "TRUSTED_ISSUERS",
        "PUBLIC_URL",
        "JWT_ALGORITHMS",
        "JWT_LEEWAY_SECONDS",
        "JWT_MAX_LIFETIME_SECONDS",
        "REPLAY_STORE",
        "CORS_ORIGINS",
        "MAX_JSON_DEPTH",
        "DATA_DIR",
    ):
        assert f"MIPOMERSEN_CDS_{name}" in names


def test_a_trusted_issuer_with_pinned_keys_jwks_url_and_tenants() -> None:
    entry = {"jwks_url": SANDBOX_JKU, "jwks": jwks(ec_key(), rsa_key()), "tenant": ["a", "b"]}
    (issuer,) = security(TRUSTED_ISSUERS=issuers(entry)).trusted_issuers.values()
    assert issuer == TrustedIssuer(
        SANDBOX_ISS,
        jwks_url=SANDBOX_JKU,
        keys=(ec_key().public_jwk(), rsa_key().public_jwk()),
        tenants=frozenset({"a", "b"}),
    )


@pytest.mark.parametrize(
    ("variables", "check"),
    [
        pytest.param({"AUTH": "OFF"}, lambda s: s.auth is AuthMode.OFF, id="auth-off-any-case"),
        pytest.param(
            {"PUBLIC_URL": "https://cds.example.org/base/"},
            lambda s: s.public_url == "https://cds.example.org/base",
            id="public-url-with-prefix",
        ),
        pytest.param(
            {"PUBLIC_URL": "http://127.0.0.1:8080"},
            lambda s: s.public_url == "http://127.0.0.1:8080",
            id="public-url-http-on-loopback",
        ),
        pytest.param(
            {"JWT_ALGORITHMS": "ES384, PS256,EdDSA"},
            lambda s: s.jwt_algorithms == ("ES384", "PS256", "EdDSA"),
            id="algorithms",
        ),
        pytest.param(
            {"JWT_LEEWAY_SECONDS": "0"}, lambda s: s.jwt_leeway_seconds == 0, id="no-leeway"
        ),
        pytest.param(
            {"JWT_MAX_LIFETIME_SECONDS": "300"},
            lambda s: s.jwt_max_lifetime_seconds == 300,
            id="max-lifetime",
        ),
        pytest.param(
            {"REPLAY_STORE": "redis://127.0.0.1:6379/0"},
            lambda s: s.replay_store == "redis://127.0.0.1:6379/0",
            id="redis",
        ),
        pytest.param(
            {"CORS_ORIGINS": "https://EHR.example.org,http://localhost:3000"},
            lambda s: s.cors_origins == ("https://ehr.example.org", "http://localhost:3000"),
            id="cors-origins",
        ),
        pytest.param({"MAX_JSON_DEPTH": "32"}, lambda s: s.max_json_depth == 32, id="depth"),
        pytest.param(
            {"TRUSTED_ISSUERS": issuers({"jwks_url": "http://localhost:9000/jwks"})},
            lambda s: s.trusted_issuers[SANDBOX_ISS].jwks_url == "http://localhost:9000/jwks",
            id="jwks-url-http-on-loopback",
        ),
        pytest.param(
            {"TRUSTED_ISSUERS": issuers({"jwks_url": SANDBOX_JKU, "tenant": "org-1"})},
            lambda s: s.trusted_issuers[SANDBOX_ISS].tenants == {"org-1"},
            id="one-tenant",
        ),
    ],
)
def test_variable_sets_the_value(variables: dict[str, str], check: Any) -> None:
    assert check(security(**variables))


def test_data_dir() -> None:
    assert load_settings({"MIPOMERSEN_CDS_DATA_DIR": "/var/lib/cds"}).data_dir == Path(
        "/var/lib/cds"
    )


def _with(**changes: Any) -> str:
    return issuers({"jwks": {"keys": [{**PUBLIC_JWK, **changes}]}})


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        pytest.param("AUTH", "optional", "must be one of required, off", id="auth"),
        pytest.param("JWT_ALGORITHMS", "ES384,HS256", "'HS256' is not allowed", id="hmac"),
        pytest.param("JWT_ALGORITHMS", "none", "'none' is not allowed", id="none"),
        pytest.param("JWT_ALGORITHMS", " , ", "empty", id="no-algorithm"),
        pytest.param("JWT_LEEWAY_SECONDS", "600", "between 0 and 300", id="leeway-too-long"),
        pytest.param("JWT_LEEWAY_SECONDS", "soon", "not a number", id="leeway-text"),
        pytest.param("JWT_MAX_LIFETIME_SECONDS", "0", "between 1 and", id="lifetime-zero"),
        pytest.param("PUBLIC_URL", "cds.example.org", "absolute https", id="public-url-relative"),
        pytest.param("PUBLIC_URL", "http://cds.example.org", "must use https", id="public-http"),
        pytest.param("PUBLIC_URL", "https://cds.example.org?a=1", "query", id="public-query"),
        pytest.param("PUBLIC_URL", "https://u:p@cds.example.org", "credentials", id="public-user"),
        pytest.param("REPLAY_STORE", "memcached://x", "'sqlite' or a redis", id="store"),
        pytest.param("CORS_ORIGINS", "*,https://a.example", "* or a comma", id="cors-mixed"),
        pytest.param("CORS_ORIGINS", "https://a.example/path", "not an origin", id="cors-path"),
        pytest.param("CORS_ORIGINS", "a.example", "not an origin", id="cors-no-scheme"),
        pytest.param("MAX_JSON_DEPTH", "4", "from 8 to 500", id="depth-too-small"),
        pytest.param("MAX_JSON_DEPTH", "deep", "from 8 to 500", id="depth-text"),
        pytest.param("TRUSTED_ISSUERS", "{", "not valid JSON", id="issuers-json"),
        pytest.param("TRUSTED_ISSUERS", "[]", "must be a JSON object", id="issuers-array"),
        pytest.param("TRUSTED_ISSUERS", issuers({}, iss=""), "must not be empty", id="empty-iss"),
        pytest.param("TRUSTED_ISSUERS", json.dumps({SANDBOX_ISS: "x"}), "JSON object", id="entry"),
        pytest.param("TRUSTED_ISSUERS", issuers({}), "needs jwks_url or an inline jwks", id="none"),
        pytest.param(
            "TRUSTED_ISSUERS", issuers({"jwks_uri": SANDBOX_JKU}), "unknown field", id="typo"
        ),
        pytest.param(
            "TRUSTED_ISSUERS", issuers({"jwks_url": 7}), "jwks_url must be a string", id="url-type"
        ),
        pytest.param(
            "TRUSTED_ISSUERS",
            issuers({"jwks_url": "http://ehr.example.org/jwks"}),
            "must use https",
            id="jwks-url-http",
        ),
        pytest.param(
            "TRUSTED_ISSUERS", issuers({"jwks": {"keys": []}}), "JWK Set", id="jwks-empty"
        ),
        pytest.param("TRUSTED_ISSUERS", issuers({"jwks": [PUBLIC_JWK]}), "JWK Set", id="jwks-list"),
        pytest.param(
            "TRUSTED_ISSUERS", _with(d="private"), "private key material (d)", id="private-key"
        ),
        pytest.param(
            "TRUSTED_ISSUERS",
            issuers({"jwks": {"keys": [{"kty": "oct", "kid": "s", "k": "c2VjcmV0"}]}}),
            "symmetric (oct) key",
            id="symmetric-key",
        ),
        pytest.param("TRUSTED_ISSUERS", _with(kid=None), "has no kid", id="no-kid"),
        pytest.param("TRUSTED_ISSUERS", _with(use="enc"), "not a signature key", id="enc-key"),
        pytest.param("TRUSTED_ISSUERS", _with(alg="ES256"), "alg 'ES256'", id="alg-not-allowed"),
        pytest.param("TRUSTED_ISSUERS", _with(x="AAAA"), "not a usable public key", id="bad-point"),
        pytest.param(
            "TRUSTED_ISSUERS",
            issuers({"jwks": {"keys": ["not a key"]}}),
            "not a JSON object",
            id="key-not-object",
        ),
        pytest.param(
            "TRUSTED_ISSUERS",
            issuers({"jwks": {"keys": [PUBLIC_JWK, PUBLIC_JWK]}}),
            "repeats",
            id="repeated-kid",
        ),
        pytest.param(
            "TRUSTED_ISSUERS",
            issuers({"jwks_url": SANDBOX_JKU, "tenant": ["a", 1]}),
            "tenant must be a string or a list",
            id="tenant-type",
        ),
    ],
)
def test_bad_value_is_refused_naming_the_variable(variable: str, value: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=f"MIPOMERSEN_CDS_{variable}") as error:
        security(**{variable: value})
    assert message in str(error.value)


def test_a_redis_password_is_never_echoed() -> None:
    with pytest.raises(ConfigurationError) as error:
        security(REPLAY_STORE="redis//:hunter2@cache:6379")
    assert "hunter2" not in str(error.value)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (Settings(public_url="https://cds.example.org"), "TRUSTED_ISSUERS is not set"),
        (
            Settings(trusted_issuers={"i": TrustedIssuer("i", jwks_url=SANDBOX_JKU)}),
            "PUBLIC_URL is not set",
        ),
    ],
)
def test_serving_with_auth_needs_issuers_and_a_public_url(settings: Settings, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        require_serving_settings(settings)
    require_serving_settings(Settings(auth=AuthMode.OFF))


README = Path(__file__).parents[1] / "README.md"


def test_the_readme_issuer_examples_are_valid_settings() -> None:
    examples = re.findall(r"MIPOMERSEN_CDS_TRUSTED_ISSUERS='(.*?)'", README.read_text(), re.S)
    assert len(examples) == 2
    sandbox, epic = (security(TRUSTED_ISSUERS=example) for example in examples)
    (pinned,) = sandbox.trusted_issuers.values()
    assert pinned.keys[0]["kid"] == "44823f3d-0b01-4a6c-a80e-b9d3e8a7226f"
    assert pinned.jwks_url == "https://sandbox.cds-hooks.org/.well-known/jwks.json"
    (fetched,) = epic.trusted_issuers.values()
    assert fetched.jwks_url and not fetched.keys and fetched.tenants == {"example-health"}


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children)
    ),
    max_leaves=8,
)
_jwk_members = st.fixed_dictionaries(
    {},
    optional={
        name: st.sampled_from([value, None, 7, [value]]) | _json
        for name, value in PUBLIC_JWK.items()
    },
)


@pytest.mark.slow  # hypothesis, 300 documents
@settings(max_examples=300, deadline=None)
@given(key=_jwk_members | _json)
def test_any_json_as_a_jwk_is_judged_never_crashes(key: Any) -> None:
    problem = jwk_problem(key, ("ES384", "RS384"))
    assert problem is None or isinstance(problem, str)
