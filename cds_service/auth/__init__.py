"""Who may call: CDS Hooks JWTs (CDS Hooks 2.0.1 § Trusting CDS Clients), JWKS, replay store."""

from __future__ import annotations

from cds_service.auth.authenticator import (
    current_client,
    install_authentication,
    jwks_session,
    public_endpoint,
)

__all__ = [
    "current_client",
    "install_authentication",
    "jwks_session",
    "public_endpoint",
]
