"""JWT authentication of CDS clients (CDS Hooks 2.0.1 § Trusting CDS Clients, best practices § JWT).

Keys are generated at test time (tests/tokens.py). One row per attack: each must get the same
401 and the same body, with the reason in the log and never the token.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from flask import Flask, Response
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cds_service import create_app
from cds_service.auth.authenticator import (
    JWKS_MAX_AGE_SECONDS,
    JWKS_MIN_REFRESH_SECONDS,
    IssuerKeys,
    current_client,
    public_endpoint,
)
from cds_service.errors import ConfigurationError, Unauthorized
from cds_service.settings import TrustedIssuer
from tests.conftest import NOW, sequential_ids
from tests.fhir_builders import hook_request, medication_request, observation
from tests.openapi_contract import assert_response_matches_openapi
from tests.tokens import (
    PUBLIC_URL,
    SANDBOX_ISS,
    SANDBOX_JKU,
    SIGN_PATH,
    SigningKey,
    auth_settings,
    bearer,
    ec_key,
    encode_unsigned,
    hmac_token,
    jwks,
    rsa_key,
    sandbox_claims,
    sandbox_headers,
    sandbox_token,
    sign,
    sign_raw,
    trusted_issuers,
)

DISCOVERY = "/cds-services"
BODY = hook_request(
    drafts=(medication_request("draft-1"),),
    labs=(
        observation("ALT", 20, "2026-11-20"),
        observation("AST", 20, "2026-11-20"),
        observation("ALP", 80, "2026-11-20"),
        observation("TBIL", 0.5, "2026-11-20"),
    ),
)
GENERIC_401 = {
    "resourceType": "OperationOutcome",
    "issue": [
        {
            "severity": "error",
            "code": "login",
            "diagnostics": "authentication required: send a valid CDS Hooks JWT as a Bearer token",
        }
    ],
}


def call(client: FlaskClient, headers: dict[str, str], path: str = SIGN_PATH) -> Response:
    """POST the sample hook request (or GET discovery) and check the answer against openapi.yaml."""
    if path == DISCOVERY:
        response = client.get(path, headers=headers)
        assert_response_matches_openapi(response, method="GET", path=path)
        return response
    data = json.dumps(BODY).encode()
    response = client.post(path, data=data, content_type="application/json", headers=headers)
    assert_response_matches_openapi(response, method="POST", path=path, request_body=data)
    return response


def auth_reasons(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.fields["reason"]  # type: ignore[attr-defined]
        for record in caplog.records
        if record.name == "cds_service.auth.authenticator"
        and record.message == "authentication failed"
    ]


def _now() -> int:
    return int(time.time())


def _tampered_payload() -> str:
    header, _, signature = sandbox_token().split(".")
    forged = encode_unsigned({}, sandbox_claims(jti="forged")).split(".")[1]
    return f"{header}.{forged}.{signature}"


def _tampered_signature() -> str:
    token = sandbox_token()
    flipped = "A" if token[-5] != "A" else "B"
    return token[:-5] + flipped + token[-4:]


def _hs256_with_public_key() -> str:
    header = sandbox_headers(ec_key(), alg="HS256")
    return hmac_token(ec_key().public_pem(), header, sandbox_claims())


# (id, Authorization header value or None, reason expected in the log)
ATTACKS: list[tuple[str, Callable[[], str | None], str]] = [
    ("no-header", lambda: None, "no Authorization header"),
    ("basic-scheme", lambda: "Basic dXNlcjpwYXNz", "not a Bearer token"),
    ("not-a-jwt", lambda: "Bearer not-a-jwt", "not a compact JWT"),
    (
        "alg-none",
        lambda: (
            "Bearer " + encode_unsigned(sandbox_headers(ec_key(), alg="none"), sandbox_claims())
        ),
        "alg 'none' is not allowed",
    ),
    (
        "hs256-signed-with-the-public-key",
        lambda: "Bearer " + _hs256_with_public_key(),
        "alg 'HS256' is not allowed",
    ),
    (
        "disallowed-alg-rs256",
        lambda: (
            "Bearer " + sign(rsa_key(), sandbox_claims(), sandbox_headers(rsa_key()), alg="RS256")
        ),
        "alg 'RS256' is not allowed",
    ),
    (
        "expired",
        lambda: "Bearer " + sandbox_token(exp=_now() - 120, iat=_now() - 420),
        "token expired",
    ),
    ("not-yet-valid-nbf", lambda: "Bearer " + sandbox_token(nbf=_now() + 120), "not yet valid"),
    (
        "issued-in-the-future",
        lambda: "Bearer " + sandbox_token(iat=_now() + 120, exp=_now() + 420),
        "not yet valid",
    ),
    (
        "wrong-aud-other-service",
        lambda: "Bearer " + sandbox_token(aud=PUBLIC_URL + "/cds-services/mipomersen-order-select"),
        "aud is not the URL called",
    ),
    (
        "wrong-aud-other-host",
        lambda: "Bearer " + sandbox_token(aud="https://evil.example.org" + SIGN_PATH),
        "aud is not the URL called",
    ),
    ("missing-jti", lambda: "Bearer " + sandbox_token(jti=None), "required claim"),
    ("missing-exp", lambda: "Bearer " + sandbox_token(exp=None), "required claim"),
    ("missing-iat", lambda: "Bearer " + sandbox_token(iat=None), "required claim"),
    ("missing-aud", lambda: "Bearer " + sandbox_token(aud=None), "required claim"),
    ("empty-jti", lambda: "Bearer " + sandbox_token(jti=""), "jti is not a short non-empty"),
    ("exp-as-string", lambda: "Bearer " + sandbox_token(exp=str(_now() + 300)), "NumericDate"),
    (
        "lifetime-over-an-hour",
        lambda: "Bearer " + sandbox_token(exp=_now() + 7200),
        "lifetime exp - iat exceeds 3600",
    ),
    (
        "unknown-iss",
        lambda: "Bearer " + sandbox_token(iss="https://evil.example.org"),
        "'https://evil.example.org' is not a trusted issuer",
    ),
    ("missing-iss", lambda: "Bearer " + sandbox_token(iss=None), "None is not a trusted issuer"),
    (
        "unknown-kid",
        lambda: "Bearer " + sandbox_token(ec_key("not-in-the-jwks")),
        "unknown kid 'not-in-the-jwks'",
    ),
    (
        "missing-kid",
        lambda: "Bearer " + sign(ec_key(), sandbox_claims(), sandbox_headers(ec_key(), kid=None)),
        "no kid",
    ),
    (
        "typ-not-jwt",
        lambda: (
            "Bearer " + sign(ec_key(), sandbox_claims(), sandbox_headers(ec_key(), typ="at+jwt"))
        ),
        "typ is not JWT",
    ),
    (
        "foreign-jku",
        lambda: (
            "Bearer "
            + sign(
                ec_key(),
                sandbox_claims(),
                sandbox_headers(ec_key(), jku="https://evil.example.org/jwks.json"),
            )
        ),
        "jku is not the jwks_url",
    ),
    (
        "crit-extension",
        lambda: (
            "Bearer "
            + sign(ec_key(), sandbox_claims(), sandbox_headers(ec_key(), crit=["exp"], exp=1))
        ),
        "malformed or unverifiable JWT (InvalidTokenError)",  # PyJWT: RFC 7515 § 4.1.11
    ),
    (
        "key-of-another-type-for-the-kid",
        lambda: (
            "Bearer "
            + sign(rsa_key(), sandbox_claims(), sandbox_headers(rsa_key(), kid=ec_key().kid))
        ),
        "is for alg 'ES384', not RS384",
    ),
    (
        "signed-by-another-key-with-a-trusted-kid",
        lambda: "Bearer " + sandbox_token(SigningKey(ec_key().kid, "ES384", ec_key("x").private)),
        "signature does not verify",
    ),
    ("tampered-payload", lambda: "Bearer " + _tampered_payload(), "signature does not verify"),
    ("tampered-signature", lambda: "Bearer " + _tampered_signature(), "signature does not verify"),
    ("payload-not-an-object", lambda: "Bearer " + _payload_list(), "malformed"),
    ("tenant-not-a-string", lambda: "Bearer " + sandbox_token(tenant=7), "tenant is not a string"),
]


def _payload_list() -> str:
    header = encode_unsigned(sandbox_headers(ec_key(), alg="ES384"), {}).split(".")[0]
    return f"{header}.WzFd.c2ln"  # payload [1]


@pytest.mark.parametrize(
    ("authorization", "reason"),
    [pytest.param(make, reason, id=name) for name, make, reason in ATTACKS],
)
def test_attack_is_refused_with_a_generic_401(
    auth_client: FlaskClient,
    caplog: pytest.LogCaptureFixture,
    authorization: Callable[[], str | None],
    reason: str,
) -> None:
    caplog.set_level(logging.INFO)
    header = authorization()
    response = call(auth_client, {} if header is None else {"Authorization": header})
    assert response.status_code == 401
    assert response.get_json() == GENERIC_401
    expected_challenge = "Bearer" if header is None else 'Bearer error="invalid_token"'
    assert response.headers["WWW-Authenticate"] == expected_challenge
    (logged,) = auth_reasons(caplog)
    assert reason in logged
    if header is not None:
        token = header.split(" ", 1)[-1]
        assert token not in caplog.text and token not in response.get_data(as_text=True)


def test_replayed_jti_is_refused(
    auth_client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    token = sandbox_token()
    assert call(auth_client, bearer(token)).status_code == 200
    replay = call(auth_client, bearer(token))
    assert replay.status_code == 401
    assert replay.get_json() == GENERIC_401
    (logged,) = auth_reasons(caplog)
    assert "already used (replay)" in logged


def test_a_token_shaped_like_the_reference_sandboxs_is_accepted(auth_client: FlaskClient) -> None:
    token = sandbox_token()
    header, claims = sandbox_headers(ec_key()), sandbox_claims()
    assert header == {"typ": "JWT", "kid": ec_key().kid, "jku": SANDBOX_JKU}
    assert set(claims) == {"iss", "aud", "exp", "iat", "jti"}
    assert claims["exp"] - claims["iat"] == 300
    response = call(auth_client, bearer(token))
    assert response.status_code == 200
    assert response.get_json() == {"cards": []}


def test_an_epic_style_rs384_token_with_sub_and_nbf_is_accepted(auth_client: FlaskClient) -> None:
    claims = sandbox_claims(sub="epic-client-id", nbf=_now() - 300, tenant="org-1")
    headers = sandbox_headers(rsa_key(), jku=None)
    response = call(auth_client, bearer(sign(rsa_key(), claims, headers)))
    assert response.status_code == 200


def test_aud_may_be_an_array_holding_the_url_called(auth_client: FlaskClient) -> None:
    token = sandbox_token(aud=[PUBLIC_URL + SIGN_PATH, "https://other.example.org"])
    assert call(auth_client, bearer(token)).status_code == 200


def test_clock_skew_within_the_leeway_is_tolerated(auth_client: FlaskClient) -> None:
    token = sandbox_token(iat=_now() + 20, nbf=_now() + 20, exp=_now() + 320)
    assert call(auth_client, bearer(token)).status_code == 200


def test_discovery_requires_a_token_for_its_own_url(auth_client: FlaskClient) -> None:
    assert call(auth_client, {}, DISCOVERY).status_code == 401
    token_for_service = sandbox_token()
    assert call(auth_client, bearer(token_for_service), DISCOVERY).status_code == 401
    response = call(auth_client, bearer(sandbox_token(path=DISCOVERY)), DISCOVERY)
    assert response.status_code == 200
    assert len(response.get_json()["services"]) == 3


def test_unknown_paths_and_methods_answer_401_before_404_or_405(auth_client: FlaskClient) -> None:
    for method, path in (("GET", "/nowhere"), ("GET", SIGN_PATH), ("DELETE", DISCOVERY)):
        response = auth_client.open(path, method=method)
        assert response.status_code == 401, (method, path)
        assert_response_matches_openapi(response, method=method, path=path)
        authorized = auth_client.open(path, method=method, headers=bearer(sandbox_token(path=path)))
        assert authorized.status_code in (404, 405)
        assert_response_matches_openapi(authorized, method=method, path=path)


def test_options_on_an_unknown_path_is_404_not_401(auth_client: FlaskClient) -> None:
    assert auth_client.options("/nowhere").status_code == 404


def test_a_pinned_key_without_alg_must_fit_the_tokens_alg(tmp_path: Path) -> None:
    rsa_without_alg = {k: v for k, v in rsa_key().public_jwk().items() if k != "alg"}
    issuers = {SANDBOX_ISS: {"jwks": {"keys": [rsa_without_alg]}}}
    app = create_app(
        {**auth_settings(tmp_path), "TRUSTED_ISSUERS": json.dumps(issuers)}, environ={}
    )
    es384_claiming_the_rsa_kid = sign(
        ec_key(), sandbox_claims(), sandbox_headers(ec_key(), kid=rsa_key().kid, jku=None)
    )
    assert call(app.test_client(), bearer(es384_claiming_the_rsa_kid)).status_code == 401
    rs384 = sign(rsa_key(), sandbox_claims(), sandbox_headers(rsa_key(), jku=None))
    assert call(app.test_client(), bearer(rs384)).status_code == 200


def test_preflight_needs_no_token(auth_client: FlaskClient) -> None:
    response = auth_client.options(
        SIGN_PATH,
        headers={
            "Origin": "https://ehr.example.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Headers"] == "Authorization, Content-Type"


def test_a_public_endpoint_needs_no_token(auth_app: Flask) -> None:
    @public_endpoint
    def health() -> dict[str, str]:
        return {"status": "ok", "client": str(current_client())}

    auth_app.add_url_rule("/health", "health", health)
    response = auth_app.test_client().get("/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "client": "None"}


def test_the_authenticated_client_is_available_to_views(auth_app: Flask) -> None:
    auth_app.add_url_rule("/whoami", "whoami", lambda: {"iss": current_client().issuer})  # type: ignore[union-attr]
    response = auth_app.test_client().get("/whoami", headers=bearer(sandbox_token(path="/whoami")))
    assert response.get_json() == {"iss": SANDBOX_ISS}


# --- tenants -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tenant", "status"),
    [("org-1", 200), ("org-2", 200), ("org-3", 401), (None, 401)],
    ids=["listed", "also-listed", "other-tenant", "no-tenant"],
)
def test_a_configured_tenant_must_match(tmp_path: Path, tenant: str | None, status: int) -> None:
    app = create_app(auth_settings(tmp_path, tenant=["org-1", "org-2"]), environ={})
    response = call(app.test_client(), bearer(sandbox_token(tenant=tenant)))
    assert response.status_code == status


# --- JWK Sets fetched from jwks_url --------------------------------------------------------------


def url_app(tmp_path: Path) -> Flask:
    return create_app(
        auth_settings(tmp_path, inline=False),
        environ={},
        clock=lambda: NOW,
        new_id=sequential_ids(),
    )


def fetched_keys(monotonic: Callable[[], float]) -> IssuerKeys:
    """The sandbox issuer's keys, fetched from its jwks_url, with a controlled clock."""
    return IssuerKeys(
        TrustedIssuer(SANDBOX_ISS, jwks_url=SANDBOX_JKU),
        algorithms=("ES384",),
        session=requests.Session(),
        monotonic=monotonic,
    )


@responses.activate
def test_keys_are_fetched_from_jwks_url_and_cached(tmp_path: Path) -> None:
    jwks_call = responses.get(SANDBOX_JKU, json=jwks(ec_key(), rsa_key()))
    client = url_app(tmp_path).test_client()
    for _ in range(3):
        assert call(client, bearer(sandbox_token())).status_code == 200
    assert jwks_call.call_count == 1


@responses.activate
def test_a_rotated_key_is_fetched_on_its_first_use(tmp_path: Path) -> None:
    new_key = ec_key("rotated-in")
    responses.get(SANDBOX_JKU, json=jwks(ec_key()))
    responses.get(SANDBOX_JKU, json=jwks(ec_key(), new_key))
    keys = fetched_keys(iter([0.0, JWKS_MIN_REFRESH_SECONDS]).__next__)
    assert keys.verifier(ec_key().kid, "ES384").key_id == ec_key().kid
    assert keys.verifier("rotated-in", "ES384").key_id == "rotated-in"
    assert len(responses.calls) == 2


@responses.activate
def test_unknown_kids_refetch_the_jwks_at_most_once_a_minute(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    jwks_call = responses.get(SANDBOX_JKU, json=jwks(ec_key()))
    clock = [1000.0]
    keys = fetched_keys(lambda: clock[0])
    for kid, advance, fetches in [
        ("forged-1", 0, 1),  # first use: fetch
        ("forged-2", 30, 1),  # unknown kid, 30 s later: no refetch
        ("forged-3", 29.9, 1),  # 59.9 s after the fetch: still none
        ("forged-4", 0.1, 2),  # a minute after: refetch
        (ec_key().kid, JWKS_MAX_AGE_SECONDS - 1, 2),  # known kid, set still fresh
        (ec_key().kid, 1, 3),  # an hour old: refreshed
    ]:
        clock[0] += advance
        if kid.startswith("forged"):
            with pytest.raises(Unauthorized) as refused:
                keys.verifier(kid, "ES384")
            assert refused.value.reason.startswith("unknown kid")
        else:
            keys.verifier(kid, "ES384")
        assert jwks_call.call_count == fetches, kid


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param({"status": 500, "json": {}}, id="http-500"),
        pytest.param({"body": requests.ConnectionError("refused")}, id="connection-refused"),
        pytest.param({"body": "not json"}, id="not-json"),
        pytest.param({"json": ["not", "a", "jwk", "set"]}, id="not-a-jwk-set"),
        pytest.param({"body": b"{" + b" " * 300_000 + b"}"}, id="too-large"),
        pytest.param(
            {"status": 302, "headers": {"Location": "https://elsewhere.example.org/jwks"}},
            id="redirect-not-followed",
        ),
        pytest.param(
            {"json": {"keys": [{"kty": "oct", "kid": "44823f3d-0b01-4a6c-a80e-b9d3e8a7226f"}]}},
            id="symmetric-key-ignored",
        ),
    ],
)
@responses.activate
def test_an_unusable_jwks_endpoint_means_401_and_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, answer: dict[str, Any]
) -> None:
    caplog.set_level(logging.INFO)
    responses.get(SANDBOX_JKU, **answer)
    response = call(url_app(tmp_path).test_client(), bearer(sandbox_token()))
    assert response.status_code == 401
    assert any("unknown kid" in reason for reason in auth_reasons(caplog))


@responses.activate
def test_a_failed_refresh_keeps_the_keys_already_fetched(tmp_path: Path) -> None:
    responses.get(SANDBOX_JKU, json=jwks(ec_key()))
    responses.get(SANDBOX_JKU, status=503)
    clock = [0.0]
    keys = fetched_keys(lambda: clock[0])
    keys.verifier(ec_key().kid, "ES384")
    clock[0] = JWKS_MAX_AGE_SECONDS
    assert keys.verifier(ec_key().kid, "ES384").key_id == ec_key().kid
    assert len(responses.calls) == 2


# --- the replay store ----------------------------------------------------------------------------


def test_an_unreachable_replay_store_fails_closed_with_503(tmp_path: Path) -> None:
    settings = {**auth_settings(tmp_path), "REPLAY_STORE": "redis://127.0.0.1:1/0"}
    response = call(create_app(settings, environ={}).test_client(), bearer(sandbox_token()))
    assert response.status_code == 503
    assert response.get_json()["issue"][0]["code"] == "transient"


def test_the_sqlite_replay_store_lives_in_the_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "nested" / "data"
    app = create_app(auth_settings(data_dir), environ={})
    assert call(app.test_client(), bearer(sandbox_token())).status_code == 200
    assert (data_dir / "jwt-replay.sqlite3").is_file()


def test_an_unusable_data_dir_stops_start_up(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ConfigurationError, match="MIPOMERSEN_CDS_DATA_DIR"):
        create_app(auth_settings(blocker / "data"), environ={})


# --- start-up refuses an open service by accident ------------------------------------------------


@pytest.mark.parametrize(
    ("missing", "variable"),
    [
        ("TRUSTED_ISSUERS", "MIPOMERSEN_CDS_TRUSTED_ISSUERS"),
        ("PUBLIC_URL", "MIPOMERSEN_CDS_PUBLIC_URL"),
    ],
)
def test_auth_required_without_its_settings_stops_start_up(
    tmp_path: Path, missing: str, variable: str
) -> None:
    settings = auth_settings(tmp_path)
    del settings[missing]
    with pytest.raises(ConfigurationError, match=variable):
        create_app(settings, environ={})


def test_auth_is_required_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError, match="MIPOMERSEN_CDS_TRUSTED_ISSUERS"):
        create_app(environ={})
    assert list(tmp_path.iterdir()) == []  # refused before creating ./data


def test_auth_off_logs_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    app = create_app({"AUTH": "off"}, environ={})
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "authentication is OFF" in warning.getMessage()
    assert app.test_client().get(DISCOVERY).status_code == 200


def test_an_issuer_may_pin_keys_and_name_its_jku(tmp_path: Path) -> None:
    settings = json.loads(trusted_issuers(ec_key()))
    assert settings == {SANDBOX_ISS: {"jwks_url": SANDBOX_JKU, "jwks": jwks(ec_key())}}
    without_jku = sign(ec_key(), sandbox_claims(), sandbox_headers(ec_key(), jku=None))
    app = create_app(auth_settings(tmp_path), environ={})
    assert call(app.test_client(), bearer(without_jku)).status_code == 200


_claim_values = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.lists(st.text(max_size=10), max_size=3)
    | st.dictionaries(st.text(max_size=5), st.integers(), max_size=2)
)


@pytest.mark.slow  # hypothesis, 150 signed tokens
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    claim=st.sampled_from(["iss", "aud", "exp", "iat", "nbf", "jti", "tenant", "sub"]),
    value=_claim_values,
    header=st.sampled_from(["kid", "typ", "jku", "alg"]),
    header_value=_claim_values,
    touch_header=st.booleans(),
)
def test_validly_signed_tokens_with_odd_values_get_200_or_401_never_500(
    auth_client: FlaskClient,
    claim: str,
    value: Any,
    header: str,
    header_value: Any,
    touch_header: bool,
) -> None:
    claims = sandbox_claims(path=DISCOVERY)
    claims[claim] = value
    headers = {"alg": "ES384", **sandbox_headers(ec_key())}
    if touch_header:
        headers[header] = header_value
    token = sign_raw(ec_key(), headers, claims)
    response = auth_client.get(DISCOVERY, headers=bearer(token))
    assert response.status_code in (200, 401)


def test_the_jwks_session_trusts_nothing_from_the_environment() -> None:
    from cds_service.auth.authenticator import jwks_session

    session = jwks_session()

    assert session.trust_env is False  # no proxy, .netrc or CA bundle from the environment
    assert session.headers["Accept"] == "application/json"
