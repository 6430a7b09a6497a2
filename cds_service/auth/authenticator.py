"""Authenticate CDS clients by their signed JWT (CDS Hooks 2.0.1 § Trusting CDS Clients).

Every request except a CORS preflight (OPTIONS) and endpoints marked `@public_endpoint` must
carry `Authorization: Bearer <JWT>`. Following the spec and its best-practices page (§ JWT),
the token is accepted only when all of these hold:

- the header has `typ` JWT, an `alg` from `MIPOMERSEN_CDS_JWT_ALGORITHMS` (never `none` or
  HMAC) and a `kid`; a `jku`, if present, is the issuer's configured `jwks_url`;
- `iss` is a trusted issuer, and the issuer's JWK Set holds `kid` with a key fit for `alg`;
- PyJWT verifies the signature and the claims: `iss aud exp iat jti` present, `aud` equals
  `MIPOMERSEN_CDS_PUBLIC_URL` + the request path, `exp`, `nbf` and `iat` within the leeway;
- the token lives at most `MIPOMERSEN_CDS_JWT_MAX_LIFETIME_SECONDS`, names an allowed
  `tenant` when the issuer lists tenants, and its `jti` was never used before.

A failure is answered 401 with the same body whatever the reason; the reason is logged at INFO,
never the token. Extra claims (such as the `sub` Epic sends) are tolerated. Token times are
checked against the system clock (PyJWT's), not the app's injectable evaluation clock.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import jwt
import requests
from flask import Flask, current_app, g, request
from jwt import PyJWK
from jwt.exceptions import (
    ExpiredSignatureError,
    ImmatureSignatureError,
    InvalidAudienceError,
    InvalidIssuerError,
    InvalidSignatureError,
    MissingRequiredClaimError,
    PyJWTError,
)

from cds_service.auth.replay import ReplayStore, open_replay_store, token_key
from cds_service.errors import Unauthorized
from cds_service.outbound_http import outbound_session
from cds_service.settings import (
    AuthMode,
    Settings,
    TrustedIssuer,
    jwk_problem,
    require_serving_settings,
)
from fhir_mappings import shorten

__all__ = [
    "Authenticator",
    "CdsClient",
    "IssuerKeys",
    "current_client",
    "install_authentication",
    "public_endpoint",
]

REQUIRED_CLAIMS = ("iss", "aud", "exp", "iat", "jti")
JWKS_MIN_REFRESH_SECONDS = 60.0  # an unknown kid refetches the JWK Set at most once a minute
JWKS_MAX_AGE_SECONDS = 3600.0  # a fetched JWK Set is refreshed after an hour even if kids match
JWKS_TIMEOUT_SECONDS = 5.0
MAX_JWKS_BYTES = 256 * 1024
MAX_TOKEN_CHARS = 8192
MAX_JTI_CHARS = 256
_BEARER = re.compile(r"[ \t]*Bearer[ \t]+([^ \t]+)[ \t]*", re.IGNORECASE)
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_PUBLIC_ATTRIBUTE = "_mipomersen_cds_public"
# PyJWT's verdicts, in words for the log (their messages never contain the token either).
_PYJWT_REASONS: tuple[tuple[type[PyJWTError], str], ...] = (
    (ExpiredSignatureError, "token expired (exp)"),
    (ImmatureSignatureError, "token not yet valid (nbf or iat in the future)"),
    (InvalidAudienceError, "aud is not the URL called"),
    (InvalidIssuerError, "iss mismatch"),
    (InvalidSignatureError, "signature does not verify"),
    (MissingRequiredClaimError, "a required claim (iss aud exp iat jti) is missing"),
)

logger = logging.getLogger(__name__)

View = TypeVar("View", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class CdsClient:
    """The authenticated caller: what its JWT said, safe to log (unlike the JWT itself)."""

    issuer: str
    jti: str
    tenant: str | None = None


class IssuerKeys:
    """The public keys of one trusted issuer: pinned in the settings, or its cached JWK Set.

    A fetched set is refetched when a JWT names an unknown `kid` (key rotation) or when it is
    older than an hour, but never more than once a minute, so forged kids cannot make the
    service hammer the issuer. A failed fetch keeps the keys already known.
    """

    def __init__(
        self,
        issuer: TrustedIssuer,
        *,
        algorithms: tuple[str, ...],
        session: requests.Session,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._issuer = issuer
        self._algorithms = algorithms
        self._session = session
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._keys: dict[str, Mapping[str, Any]] = {key["kid"]: key for key in issuer.keys}
        self._verifiers: dict[tuple[str, str], PyJWK] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None

    def verifier(self, kid: str, alg: str) -> PyJWK:
        """Return the key `kid` bound to `alg`; raise `Unauthorized` if none fits."""
        key = self._key(kid)
        if key is None:
            raise _rejected(f"unknown kid {_quote(kid)} for iss {_quote(self._issuer.issuer)}")
        if key.get("alg", alg) != alg:
            raise _rejected(f"kid {_quote(kid)} is for alg {_quote(key['alg'])}, not {alg}")
        with self._lock:
            verifier = self._verifiers.get((kid, alg))
            if verifier is None:
                try:
                    verifier = PyJWK(dict(key), algorithm=alg)
                except PyJWTError:
                    raise _rejected(f"kid {_quote(kid)} is not a key for alg {alg}") from None
                self._verifiers[kid, alg] = verifier
        return verifier

    def _key(self, kid: str) -> Mapping[str, Any] | None:
        if self._issuer.keys or self._issuer.jwks_url is None:
            return self._keys.get(kid)
        with self._lock:
            now = self._monotonic()
            stale = self._fetched_at is None or now - self._fetched_at >= JWKS_MAX_AGE_SECONDS
            may_fetch = (
                self._attempted_at is None or now - self._attempted_at >= JWKS_MIN_REFRESH_SECONDS
            )
            if (kid not in self._keys or stale) and may_fetch:
                self._attempted_at = now
                keys = self._fetch(self._issuer.jwks_url)
                if keys is not None:
                    self._keys, self._verifiers, self._fetched_at = keys, {}, now
            return self._keys.get(kid)

    def _fetch(self, url: str) -> dict[str, Mapping[str, Any]] | None:
        """Fetch and check the JWK Set; None (logged) when it cannot be used."""
        try:
            with self._session.get(
                url, timeout=JWKS_TIMEOUT_SECONDS, stream=True, allow_redirects=False
            ) as response:
                if response.status_code != 200:
                    raise ValueError(
                        f"the JWKS URL answered {response.status_code} (redirects are not followed)"
                    )
                body = b""
                for chunk in response.iter_content(chunk_size=16384):
                    body += chunk
                    if len(body) > MAX_JWKS_BYTES:
                        raise ValueError(f"the JWK Set is larger than {MAX_JWKS_BYTES} bytes")
            document = json.loads(body)
            keys = document.get("keys") if isinstance(document, dict) else None
            if not isinstance(keys, list):
                raise ValueError('the document is not a JWK Set {"keys": [...]}')
        except (requests.RequestException, ValueError, RecursionError) as error:
            logger.warning(
                "cannot fetch the JWK Set of a trusted issuer",
                extra={"fields": {"iss": self._issuer.issuer, "url": url, "error": str(error)}},
            )
            return None
        usable: dict[str, Mapping[str, Any]] = {}
        for key in keys:
            problem = jwk_problem(key, self._algorithms)
            if problem is None:
                usable.setdefault(key["kid"], key)
            else:
                logger.info(
                    "ignoring a key of a fetched JWK Set",
                    extra={"fields": {"iss": self._issuer.issuer, "problem": problem}},
                )
        logger.info(
            "fetched the JWK Set of a trusted issuer",
            extra={"fields": {"iss": self._issuer.issuer, "kids": sorted(usable)}},
        )
        return usable


class Authenticator:
    """Check CDS Hooks JWTs against the trusted issuers; remember each `jti` in `replay_store`."""

    def __init__(
        self,
        settings: Settings,
        *,
        replay_store: ReplayStore,
        session: requests.Session,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        require_serving_settings(settings)
        self._settings = settings
        self._public_url = settings.public_url or ""
        self._replay_store = replay_store
        self._issuers = {
            iss: IssuerKeys(
                issuer, algorithms=settings.jwt_algorithms, session=session, monotonic=monotonic
            )
            for iss, issuer in settings.trusted_issuers.items()
        }

    @property
    def replay_store(self) -> ReplayStore:
        """Return where used `jti`s are kept."""
        return self._replay_store

    def authenticate(self, authorization: str | None, *, path: str) -> CdsClient:
        """Return the client a valid `Authorization` header for `path` proves, or raise.

        Raises `Unauthorized`, whose `reason` says why, or `ServiceUnavailable` when the replay
        store cannot be reached (the service fails closed).
        """
        if not authorization:
            raise Unauthorized("no Authorization header", token_sent=False)
        match = _BEARER.fullmatch(authorization)
        if match is None:
            raise Unauthorized("Authorization is not a Bearer token", token_sent=True)
        token = match.group(1)
        if len(token) > MAX_TOKEN_CHARS or not _COMPACT_JWS.fullmatch(token):
            raise Unauthorized("the Bearer token is not a compact JWT", token_sent=True)
        try:
            return self._verify(token, audience=self._public_url + path)
        except PyJWTError as error:
            raise Unauthorized(_describe(error), token_sent=True) from None

    def _verify(self, token: str, *, audience: str) -> CdsClient:
        settings = self._settings
        header = jwt.get_unverified_header(token)
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in settings.jwt_algorithms:
            raise _rejected(f"alg {_quote(alg)} is not allowed")
        if not isinstance(header.get("typ"), str) or header["typ"].upper() != "JWT":
            raise _rejected("typ is not JWT")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise _rejected("no kid in the header")
        unverified = jwt.decode(token, options={"verify_signature": False})
        iss = unverified.get("iss")
        if not isinstance(iss, str) or iss not in self._issuers:
            raise _rejected(f"iss {_quote(iss)} is not a trusted issuer")
        keys, issuer = self._issuers[iss], settings.trusted_issuers[iss]
        if "jku" in header and header["jku"] != issuer.jwks_url:
            raise _rejected(f"jku is not the jwks_url configured for iss {_quote(iss)}")
        claims = jwt.decode(
            token,
            key=keys.verifier(kid, alg),
            algorithms=list(settings.jwt_algorithms),
            audience=audience,
            issuer=iss,
            leeway=settings.jwt_leeway_seconds,
            options={"require": list(REQUIRED_CLAIMS), "enforce_minimum_key_length": True},
        )
        jti, tenant = _check_claims(claims, issuer, settings.jwt_max_lifetime_seconds)
        expires_at = float(claims["exp"]) + settings.jwt_leeway_seconds
        if not self._replay_store.first_use(token_key(iss, jti), expires_at):
            raise _rejected(f"jti {_quote(jti)} of iss {_quote(iss)} was already used (replay)")
        return CdsClient(issuer=iss, jti=jti, tenant=tenant)


def _rejected(reason: str) -> Unauthorized:
    """Return the 401 for a token that was sent but failed a check; `reason` is for the log."""
    return Unauthorized(reason, token_sent=True)


def _check_claims(
    claims: dict[str, Any], issuer: TrustedIssuer, max_lifetime: float
) -> tuple[str, str | None]:
    """Check what PyJWT leaves open: claim types, token lifetime and tenant."""
    for name in ("exp", "iat", "nbf"):
        value = claims.get(name)
        if name in claims and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise _rejected(f"{name} is not a NumericDate")
    jti = claims["jti"]
    if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI_CHARS:
        raise _rejected("jti is not a short non-empty string")
    if claims["exp"] - claims["iat"] > max_lifetime:
        raise _rejected(f"token lifetime exp - iat exceeds {max_lifetime:g} s")
    tenant = claims.get("tenant")
    if tenant is not None and not isinstance(tenant, str):
        raise _rejected("tenant is not a string")
    if issuer.tenants and tenant not in issuer.tenants:
        raise _rejected(f"tenant {_quote(tenant)} is not allowed for iss {_quote(issuer.issuer)}")
    return jti, tenant


def _describe(error: PyJWTError) -> str:
    for kind, reason in _PYJWT_REASONS:
        if isinstance(error, kind):
            return reason
    return f"malformed or unverifiable JWT ({type(error).__name__})"


def _quote(value: object, limit: int = 80) -> str:
    """Quote a value taken from a token for a log line: printable and short."""
    return shorten(repr(value), limit)


def public_endpoint(view: View) -> View:
    """Mark a view as reachable without a JWT (e.g. a health check); discovery is not public."""
    setattr(view, _PUBLIC_ATTRIBUTE, True)
    return view


def current_client() -> CdsClient | None:
    """Return the authenticated client of the current request (None with auth off)."""
    client: CdsClient | None = g.get("cds_client")
    return client


def jwks_session() -> requests.Session:
    """Return the session the JWKS cache fetches keys with, configured like the FHIR one."""
    return outbound_session(pool_size=4, accept="application/json")


def install_authentication(
    app: Flask,
    settings: Settings,
    *,
    session: requests.Session | None = None,
    replay_store: ReplayStore | None = None,
) -> Authenticator | None:
    """Require a valid JWT on every request of `app` (unless `MIPOMERSEN_CDS_AUTH=off`).

    Return the authenticator (None with authentication off), whose replay store the readiness
    check looks at.
    """
    if settings.auth is AuthMode.OFF:  # logged once per server by `startup`
        return None
    authenticator = Authenticator(
        settings,
        replay_store=replay_store or open_replay_store(settings.replay_store, settings.data_dir),
        session=session or jwks_session(),
    )
    app.before_request(lambda: _authenticate_request(authenticator))
    return authenticator


def _authenticate_request(authenticator: Authenticator) -> None:
    if request.method == "OPTIONS":
        return  # CORS preflights carry no Authorization header (Fetch standard)
    view = current_app.view_functions.get(request.endpoint or "")
    if getattr(view, _PUBLIC_ATTRIBUTE, False):
        return
    try:
        g.cds_client = authenticator.authenticate(
            request.headers.get("Authorization"), path=request.path
        )
    except Unauthorized as error:
        logger.info(
            "authentication failed",
            extra={"fields": {"reason": error.reason, "path": request.path[:200]}},
        )
        raise
