"""`mipomersen-cds dev-token`: a local ES384 key and CDS Hooks JWTs, to try authentication.

For local development only. The key is made once and kept (mode 0600) in the data directory;
the command prints the `MIPOMERSEN_CDS_TRUSTED_ISSUERS` value that trusts its public half, and
mints a JWT for a service URL as an EHR would (CDS Hooks 2.0.1 § Trusting CDS Clients): `iss`
this local issuer, `aud` the URL called, `jti` new each time (the service refuses a replay),
five minutes of life. Never trust this issuer in a deployed service.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from cds_service.cli.exits import EXIT_BAD_INPUT
from cds_service.errors import CdsServiceError
from cds_service.settings import Settings, load_settings

ISSUERS = Settings.variable("trusted_issuers")

DEV_ISSUER = "https://dev-token.mipomersen-cds.invalid"  # `.invalid`: never a real host
KEY_ID = "mipomersen-cds-dev-1"
KEY_FILE_NAME = "dev-token-es384.pem"
DEFAULT_LIFETIME_SECONDS = 300


def add_command(commands: Any) -> None:
    """Add `dev-token` to the CLI's subparsers."""
    command = commands.add_parser(
        "dev-token",
        help="make a local ES384 key and mint CDS Hooks JWTs for trying authentication locally",
        description=(
            "Mint a CDS Hooks JWT for URL, signed with a local ES384 key kept in the data "
            "directory (made on first use). --trusted-issuers prints the "
            f"{ISSUERS} value that trusts the key. Local development only."
        ),
        epilog=(
            "Example (see the README, 'Authentication locally'):\n"
            f'  export {ISSUERS}="$(mipomersen-cds dev-token '
            '--trusted-issuers)"\n'
            "  TOKEN=$(mipomersen-cds dev-token "
            "http://127.0.0.1:8080/cds-services/mipomersen-order-sign)"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.add_argument(
        "url",
        metavar="URL",
        nargs="?",
        help="the exact URL the token is for (its aud): "
        f"{Settings.variable('public_url')} + the path",
    )
    command.add_argument(
        "--trusted-issuers",
        action="store_true",
        help=f"print the {ISSUERS} value for the local key instead",
    )
    command.add_argument(
        "--lifetime",
        type=int,
        default=DEFAULT_LIFETIME_SECONDS,
        help=f"seconds until the token expires (default {DEFAULT_LIFETIME_SECONDS})",
    )
    command.set_defaults(handler=run)


def run(arguments: argparse.Namespace) -> int:
    """Print the trusted-issuers value, or a token for `arguments.url`."""
    try:
        settings = load_settings(os.environ)
        key = load_or_make_key(settings.data_dir / KEY_FILE_NAME)
        if arguments.trusted_issuers:
            sys.stdout.write(json.dumps(trusted_issuers_value(key)) + "\n")
            return 0
        if not arguments.url:
            raise CdsServiceError("give the URL the token is for, or --trusted-issuers")
        if not arguments.url.startswith(("http://", "https://")):
            raise CdsServiceError(f"{arguments.url!r} is not a URL; give the full URL called")
        if not 0 < arguments.lifetime <= 3600:
            raise CdsServiceError("--lifetime must be between 1 and 3600 seconds")
        sys.stdout.write(mint_token(key, arguments.url, lifetime=arguments.lifetime) + "\n")
    except (CdsServiceError, OSError, ValueError) as error:
        sys.stderr.write(f"mipomersen-cds: {error}\n")
        return EXIT_BAD_INPUT
    return 0


def load_or_make_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """Return the local P-384 key at `path`, making it (readable by the owner only) if absent."""
    if path.exists():
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise CdsServiceError(f"{path} does not hold an EC private key")
        return loaded
    key = ec.generate_private_key(ec.SECP384R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    sys.stderr.write(f"mipomersen-cds: made a local ES384 key in {path}\n")
    return key


def trusted_issuers_value(key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    """Return the MIPOMERSEN_CDS_TRUSTED_ISSUERS document that trusts `key`'s public half."""
    public = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    jwk = {**public, "kid": KEY_ID, "alg": "ES384", "use": "sig"}
    return {DEV_ISSUER: {"jwks": {"keys": [jwk]}}}


def mint_token(
    key: ec.EllipticCurvePrivateKey, url: str, *, lifetime: int = DEFAULT_LIFETIME_SECONDS
) -> str:
    """Return a CDS Hooks JWT for `url` signed with `key`."""
    now = int(time.time())
    claims = {
        "iss": DEV_ISSUER,
        "aud": url,
        "iat": now,
        "exp": now + lifetime,
        "jti": str(uuid.uuid4()),
    }
    return jwt.encode(claims, key, algorithm="ES384", headers={"kid": KEY_ID, "typ": "JWT"})
