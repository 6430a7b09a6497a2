"""Keys generated at test time, and JWTs shaped like the CDS Hooks reference sandbox's.

The sandbox (cds-hooks/sandbox `jwt-generator.js`, see ../shared/anchors/cds-hooks/NOTES.md § 3)
signs with ES384 and sends `kid`, `jku`, `iss`, `aud` = the URL called, `exp` = now + 300, `iat`
and `jti`. `sandbox_token` mints exactly that; `encode_unsigned` and `hmac_token` forge the
tokens an attacker would try.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm, get_default_algorithms

SANDBOX_ISS = "https://sandbox.cds-hooks.org"
SANDBOX_JKU = "https://sandbox.cds-hooks.org/.well-known/jwks.json"
PUBLIC_URL = "https://cds.example.org"
SIGN_PATH = "/cds-services/mipomersen-order-sign"


@dataclass(frozen=True)
class SigningKey:
    """A private key with its `kid` and JWS algorithm."""

    kid: str
    alg: str
    private: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

    def public_jwk(self) -> dict[str, Any]:
        """Return the public JWK, as a CDS client publishes it."""
        public = self.private.public_key()
        if isinstance(public, ec.EllipticCurvePublicKey):
            jwk = ECAlgorithm.to_jwk(public, as_dict=True)
        else:
            jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
        return {**jwk, "kid": self.kid, "alg": self.alg, "use": "sig"}

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


@cache
def ec_key(kid: str = "44823f3d-0b01-4a6c-a80e-b9d3e8a7226f") -> SigningKey:
    """Return a P-384 key for ES384 (the sandbox's algorithm); one per kid per test session."""
    return SigningKey(kid, "ES384", ec.generate_private_key(ec.SECP384R1()))


@cache
def rsa_key(kid: str = "epic-style-rsa", bits: int = 2048) -> SigningKey:
    """Return an RSA key for RS384 (Epic's default algorithm)."""
    return SigningKey(kid, "RS384", rsa.generate_private_key(public_exponent=65537, key_size=bits))


def jwks(*keys: SigningKey) -> dict[str, Any]:
    return {"keys": [key.public_jwk() for key in keys]}


def sandbox_claims(path: str = SIGN_PATH, **changes: Any) -> dict[str, Any]:
    """Return the sandbox's claims for a call to `path`; `changes` replace or (None) drop."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": SANDBOX_ISS,
        "aud": PUBLIC_URL + path,
        "exp": now + 300,
        "iat": now,
        "jti": str(uuid.uuid4()),
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


def sandbox_headers(key: SigningKey, **changes: Any) -> dict[str, Any]:
    headers: dict[str, Any] = {"typ": "JWT", "kid": key.kid, "jku": SANDBOX_JKU}
    headers.update(changes)
    return {name: value for name, value in headers.items() if value is not None}


def sign(
    key: SigningKey,
    claims: dict[str, Any],
    headers: dict[str, Any] | None = None,
    *,
    alg: str | None = None,
) -> str:
    """Sign `claims` with PyJWT; `headers` replace the sandbox's header fields."""
    return jwt.encode(
        claims,
        key.private,
        algorithm=alg or key.alg,
        headers=sandbox_headers(key) if headers is None else headers,
    )


def sandbox_token(key: SigningKey | None = None, path: str = SIGN_PATH, **changes: Any) -> str:
    """Return a token shaped like the reference sandbox's, for a call to `path`."""
    key = key or ec_key()
    return sign(key, sandbox_claims(path, **changes))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())


def encode_unsigned(header: dict[str, Any], claims: dict[str, Any], signature: str = "") -> str:
    """Return `header.claims.signature` without signing: `alg: none` and forgeries."""
    return f"{_segment(header)}.{_segment(claims)}.{signature}"


def sign_raw(key: SigningKey, header: dict[str, Any], claims: dict[str, Any]) -> str:
    """Sign any header and claims as they are (PyJWT's encode would check the header first)."""
    signing_input = f"{_segment(header)}.{_segment(claims)}"
    signature = get_default_algorithms()[key.alg].sign(signing_input.encode(), key.private)
    return f"{signing_input}.{_b64(signature)}"


def hmac_token(secret: bytes, header: dict[str, Any], claims: dict[str, Any]) -> str:
    """Sign with HS256 using `secret`; PyJWT rightly refuses a PEM public key as a secret."""
    signing_input = f"{_segment(header)}.{_segment(claims)}"
    digest = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(digest)}"


def trusted_issuers(
    *keys: SigningKey,
    iss: str = SANDBOX_ISS,
    jwks_url: str | None = SANDBOX_JKU,
    inline: bool = True,
    **extra: Any,
) -> str:
    """Return MIPOMERSEN_CDS_TRUSTED_ISSUERS trusting `iss` with these keys."""
    entry: dict[str, Any] = dict(extra)
    if jwks_url is not None:
        entry["jwks_url"] = jwks_url
    if inline:
        entry["jwks"] = jwks(*(keys or (ec_key(),)))
    return json.dumps({iss: entry})


def auth_settings(data_dir: Path, *keys: SigningKey, **issuer: Any) -> dict[str, str]:
    """Return create_app overrides for auth required, trusting the sandbox issuer."""
    return {
        "AUTH": "required",
        "TRUSTED_ISSUERS": trusted_issuers(*keys, **issuer),
        "PUBLIC_URL": PUBLIC_URL,
        "DATA_DIR": str(data_dir),
    }
