"""The service's one exception tree; each HTTP-facing error knows its status and body.

    CdsServiceError                  base of everything the service raises on purpose
    ├── ConfigurationError           a bad MIPOMERSEN_CDS_* value: start-up stops (not HTTP)
    ├── FhirFetchError               the EHR's FHIR server could not give a prefetch key's data
    │   ├── FhirServerNotAllowed     fhirServer not https, or not on the allowlist
    │   ├── FhirServerUnreachable    DNS, connection refused or reset, TLS failure
    │   ├── FhirServerTimeout        a request timed out, or the overall deadline passed
    │   ├── FhirServerStatus         an HTTP error status (401, 403, 404, 5xx, a redirect)
    │   └── FhirResponseInvalid      not JSON, too large, or not the resource type asked for
    └── HttpError                    answered as a FHIR OperationOutcome (CDS Hooks 3.0 ballot)
        ├── BadRequest               400: malformed JSON, wrong types, wrong hook, wrong patient
        │   └── InvalidFields        400 naming every problem at once (feedback items)
        ├── Unauthorized             401: no valid CDS Hooks JWT (the reason is logged, never sent)
        ├── NotFound                 404: unknown service or path
        ├── MethodNotAllowed         405: with `Allow`
        ├── PreconditionFailed       412: required prefetch data absent and not obtainable
        ├── ContentTooLarge          413: body over MIPOMERSEN_CDS_MAX_BODY_BYTES (chunked too)
        ├── TooCostly                413: the data would take more work than one call may cost
        ├── UnsupportedMediaType     415: body is not JSON
        ├── HeaderTooLarge           431: a header field over the service's limit
        ├── ServiceUnavailable       503: a dependency (JWT replay store, database) is unreachable
        ├── RefusedByServer          any other status werkzeug or gunicorn answer by themselves
        └── InternalError            500: a bug; the stack trace goes to the log, never the client

Werkzeug's own errors (404 for an unknown path, 405 for a wrong method, 413 for a body over
MIPOMERSEN_CDS_MAX_BODY_BYTES, any other) become errors of this tree through
`from_werkzeug`, so every OperationOutcome the service sends is rendered by `HttpError`.

Messages are written for the EHR integrator: they name the field (a dotted path) and the
problem, never a token, a stack trace or a patient's clinical data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from werkzeug.exceptions import HTTPException


class CdsServiceError(Exception):
    """Base class of every error the service raises on purpose."""


class ConfigurationError(CdsServiceError):
    """A configuration value is invalid; the message names the variable."""


class FhirFetchError(CdsServiceError):
    """The FHIR server could not provide data; the message is safe to show (no token, no data)."""

    retryable: bool = False


class FhirServerNotAllowed(FhirFetchError):
    """The request's fhirServer is not one this service may call."""


class FhirServerUnreachable(FhirFetchError):
    """No HTTP answer: name resolution, connection or TLS failed."""

    retryable = True


class FhirServerTimeout(FhirFetchError):
    """The server was too slow for the per-request timeout or the overall deadline."""


class FhirServerStatus(FhirFetchError):
    """The server answered with an HTTP status other than 200."""

    def __init__(self, message: str, *, status: int, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.retryable = status in (502, 503, 504)


class FhirResponseInvalid(FhirFetchError):
    """The answer was not usable FHIR JSON of the expected type, or too large."""


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


class Unauthorized(HttpError):
    """The request carries no valid CDS Hooks JWT (CDS Hooks 2.0.1 § Trusting CDS Clients).

    Every failure gets the same body, as the CDS Hooks best practices advise; `reason` says why
    for the log only and never names the token.
    """

    status = 401
    issue_code = "login"

    def __init__(self, reason: str, *, token_sent: bool) -> None:
        super().__init__("authentication required: send a valid CDS Hooks JWT as a Bearer token")
        self.reason = reason
        self.token_sent = token_sent

    def headers(self) -> dict[str, str]:
        # RFC 6750 § 3.1: no error code when the request had no credentials at all.
        return {"WWW-Authenticate": 'Bearer error="invalid_token"' if self.token_sent else "Bearer"}


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
    """The path exists but not for this method; `Allow` lists the methods it takes."""

    status = 405
    issue_code = "not-supported"

    def __init__(self, message: str, *, allowed: Sequence[str]) -> None:
        super().__init__(message)
        self.allowed = tuple(sorted(allowed))

    def headers(self) -> dict[str, str]:
        return {"Allow": ", ".join(self.allowed)}


class PreconditionFailed(HttpError):
    """Required prefetch data is missing and cannot be obtained (CDS Hooks 2.0 § Prefetch)."""

    status = 412
    issue_code = "incomplete"

    def __init__(self, message: str, *, causes: dict[str, str]) -> None:
        super().__init__(message)
        self.causes = causes  # prefetch key -> why its data could not be obtained

    @property
    def missing_keys(self) -> tuple[str, ...]:
        """Return the prefetch keys whose data is missing."""
        return tuple(self.causes)

    def issues(self) -> list[dict[str, Any]]:
        return [
            {
                "severity": "error",
                "code": self.issue_code,
                "diagnostics": f"{self.message}: prefetch key '{key}': {cause}",
                "expression": [f"prefetch.{key}"],
            }
            for key, cause in self.causes.items()
        ]


class ContentTooLarge(HttpError):
    """The body is larger than MIPOMERSEN_CDS_MAX_BODY_BYTES, however it was sent."""

    status = 413
    issue_code = "too-long"

    def headers(self) -> dict[str, str]:
        """Close the connection: the rest of the body was never read."""
        return {"Connection": "close"}


class TooCostly(HttpError):
    """Reading the FHIR data would cost more than one hook call may (`request_limits`)."""

    status = 413
    issue_code = "too-costly"


class HeaderTooLarge(HttpError):
    """A request header field is longer than the service accepts."""

    status = 431
    issue_code = "too-long"


class UnsupportedMediaType(HttpError):
    """The request body is not declared as JSON."""

    status = 415
    issue_code = "not-supported"


class ServiceUnavailable(HttpError):
    """A dependency (the JWT replay store, the database) cannot serve the request; retry later.

    Nothing was stored: a feedback item answered 503 can be sent again.
    """

    status = 503
    issue_code = "transient"


class InternalError(HttpError):
    """Something the service did not expect; the client learns nothing about internals."""

    status = 500
    issue_code = "exception"

    def __init__(self) -> None:
        super().__init__("internal error; the service has logged it")


class RefusedByServer(HttpError):
    """A request refused before the app read it (werkzeug, or gunicorn's own limits)."""

    _ISSUE_CODES = {413: "too-long", 414: "too-long", 431: "too-long", 501: "not-supported"}

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status
        self.issue_code = self._ISSUE_CODES.get(status, "invalid" if status < 500 else "exception")


def from_werkzeug(error: HTTPException) -> HttpError:
    """Return the error of this tree that stands for one werkzeug raised itself."""
    status = error.code or 500
    if status == 404:
        return NotFound("no such CDS Service or endpoint")
    if status == 405:
        allowed = getattr(error, "valid_methods", None) or ()
        return MethodNotAllowed("method not allowed on this endpoint", allowed=allowed)
    if status == 413:
        return ContentTooLarge("request body is larger than this service accepts")
    if status == 415:
        return UnsupportedMediaType(error.description or error.name)
    return RefusedByServer(error.name, status=status)
