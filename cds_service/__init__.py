"""mipomersen-cds: a CDS Hooks 2.0 service for mipomersen (Kynamro) liver safety.

The web application is built by `create_app`; it is imported lazily so that the pure domain
(`cds_service.rules`, `fhir_mappings`) never pulls in Flask.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cds_service.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from cds_service.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
