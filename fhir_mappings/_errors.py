"""The one exception this package raises: malformed FHIR JSON at a dotted path.

    ValueError
     └── FhirMappingError   the request is not FHIR R4 JSON where it must be (path says where)

Resources that are FHIR-shaped but fail validation are not errors: they are reported as
`SkippedResource` values in the `PatientRecord`, so one bad resource never fails a request.
"""

from __future__ import annotations


class FhirMappingError(ValueError):
    """Report FHIR JSON that cannot be read, naming where in the request it failed.

    The message never quotes the offending value, so it may go into an HTTP error body or a log
    line without leaking a patient's data.
    """

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message
