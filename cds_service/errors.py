"""The service's one exception tree; each HTTP-facing error knows its status and body.

    CdsServiceError                  base of everything the service raises on purpose
    ├── ConfigurationError           a bad MIPOMERSEN_CDS_* value: start-up stops (not HTTP)
    └── HttpError                    answered as a FHIR OperationOutcome (CDS Hooks 3.0 ballot)
        ├── BadRequest               400: malformed JSON, wrong types, wrong hook, wrong patient
        │   └── InvalidFields        400 naming every problem at once (feedback items)
        ├── NotFound                 404: unknown service or path
        ├── MethodNotAllowed         405: wrong method (carries the allowed ones)
        ├── PreconditionFailed       412: required prefetch data absent and not obtainable
        ├── PayloadTooLarge          413: body over MIPOMERSEN_CDS_MAX_BODY_BYTES
        ├── UnsupportedMediaType     415: body is not JSON
        └── ServiceUnavailable       503: the database could not store feedback; send it again

Messages are written for the EHR integrator: they name the field (a dotted path) and the
problem, never a token, a stack trace or a patient's clinical data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class CdsServiceError(Exception):
    """Base class of every error the service raises on purpose."""


class ConfigurationError(CdsServiceError):
    """A configuration value is invalid; the message names the variable."""


class HttpError(CdsServiceError):
    """An error answered to the client as an OperationOutcome with `status`."""

    status: int = 500
    issue_code: str = "exception"  # FHIR issue-type code

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path

    def headers(self) -> dict[str, str]:
        """Return extra response headers this error requires."""
        return {}

    def issues(self) -> list[dict[str, Any]]:
        """Return the OperationOutcome issues describing this error."""
        issue: dict[str, Any] = {
            "severity": "error",
            "code": self.issue_code,
            "diagnostics": self.message,
        }
        if self.path:
            issue["expression"] = [self.path]
        return [issue]

    def to_operation_outcome(self) -> dict[str, Any]:
        """Return the FHIR OperationOutcome body for this error."""
        return {"resourceType": "OperationOutcome", "issue": self.issues()}


class BadRequest(HttpError):
    """The request is not a valid CDS Hooks call for this service."""

    status = 400
    issue_code = "invalid"


class InvalidFields(BadRequest):
    """Several fields are wrong; one issue per `(path, message)`, each with its dotted path."""

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        super().__init__("; ".join(message for _, message in problems))
        self.problems = tuple(problems)

    def issues(self) -> list[dict[str, Any]]:
        return [
            {
                "severity": "error",
                "code": self.issue_code,
                "diagnostics": message,
                "expression": [path],
            }
            for path, message in self.problems
        ]


class NotFound(HttpError):
    """No such service or path."""

    status = 404
    issue_code = "not-found"


class MethodNotAllowed(HttpError):
    """The path exists but not for this HTTP method."""

    status = 405
    issue_code = "not-supported"

    def __init__(self, message: str, *, allowed: tuple[str, ...]) -> None:
        super().__init__(message)
        self.allowed = allowed

    def headers(self) -> dict[str, str]:
        return {"Allow": ", ".join(self.allowed)}


class PreconditionFailed(HttpError):
    """Required prefetch data is missing and cannot be obtained (CDS Hooks 2.0 § Prefetch)."""

    status = 412
    issue_code = "incomplete"

    def __init__(self, message: str, *, missing_keys: tuple[str, ...]) -> None:
        super().__init__(message)
        self.missing_keys = missing_keys

    def issues(self) -> list[dict[str, Any]]:
        return [
            {
                "severity": "error",
                "code": self.issue_code,
                "diagnostics": f"{self.message}: prefetch key '{key}' is missing",
                "expression": [f"prefetch.{key}"],
            }
            for key in self.missing_keys
        ]


class PayloadTooLarge(HttpError):
    """The request body exceeds the configured limit."""

    status = 413
    issue_code = "too-long"


class UnsupportedMediaType(HttpError):
    """The request body is not declared as JSON."""

    status = 415
    issue_code = "not-supported"


class ServiceUnavailable(HttpError):
    """A write the client relies on (feedback) did not reach the database; nothing was stored."""

    status = 503
    issue_code = "transient"
