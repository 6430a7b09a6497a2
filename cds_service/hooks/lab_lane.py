"""The lab lane: a request whose lab Bundle is decoded into typed structs and read there (issue 13).

Most of a hook request is its `liverLabs` Bundle. `decode_hook_body` decodes the body in one
pass in which that Bundle becomes the typed structs of `fhir_mappings` (`LabBundle`) and
everything else the same dicts as `decode_json_body` gives; the Observations are then read
from the structs (`read_lab_bundle`). The result is a `LaneBody`: the request as a dict, its
lab Bundle left with no entries, and the labs read beside it.

The lane is taken only when it gives what the general path would: an unusual request (the
structs refuse it, an Observation is not an ordinary valid one, a limit is near, a subject is
not plainly `Patient/<patientId>`, the Bundle is paged, another key holds Observations) is
decoded again as dicts and answered the general way (`LaneDeclined`), before anything is
fetched. tests/hooks/test_lab_lane.py compares the two on the examples and mutated requests.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, Struct, UnsetType

from cds_service.hooks.discovery import (
    CONDITIONS_KEY,
    LIVER_LABS_KEY,
    MEDICATIONS_KEY,
    PATIENT_KEY,
)
from cds_service.hooks.json_limits import (
    DEFAULT_MAX_JSON_DEPTH,
    float_or_refuse,
    has_too_many_digits,
)
from cds_service.hooks.limits import RequestLimits
from cds_service.hooks.request import (
    check_json_body,
    decode_checked_body,
    decode_json_body,
    next_link,
)
from fhir_mappings import LabBundle, PatientIdentity, TypedLabs, read_lab_bundle

__all__ = [
    "LaneBody",
    "LaneDeclined",
    "check_lane",
    "check_lane_identity",
    "decode_hook_body",
]

_LABS_PATH = f"prefetch.{LIVER_LABS_KEY}"
_LABS_KEY_BYTES = f'"{LIVER_LABS_KEY}"'.encode()


class LaneDeclined(Exception):
    """The request is not one the lab lane answers as the general path would."""


class LaneBody(dict[str, Any]):
    """A decoded request whose lab Bundle was read in the lane: `labs` and the `raw` body."""

    __slots__ = ("labs", "max_depth", "raw")

    def __init__(
        self, decoded: dict[str, Any], labs: TypedLabs, raw: bytes, max_depth: int
    ) -> None:
        super().__init__(decoded)
        self.labs = labs
        self.raw = raw
        self.max_depth = max_depth

    def as_dicts(self) -> Any:
        """Return the body decoded as dicts, as `decode_json_body` gives it."""
        return decode_json_body(self.raw, max_depth=self.max_depth)


def decode_hook_body(body: bytes, *, max_depth: int = DEFAULT_MAX_JSON_DEPTH) -> Any:
    """`decode_json_body`, with the lab Bundle read in the lane when it can be (`LaneBody`)."""
    text = check_json_body(body, max_depth=max_depth)
    return _decode_in_lane(body, max_depth) or decode_checked_body(text, body, max_depth)


class _Prefetch(Struct, forbid_unknown_fields=True):
    patient: Any = UNSET
    liverLabs: LabBundle | None | UnsetType = UNSET  # noqa: N815 - the prefetch key
    medications: Any = UNSET
    conditions: Any = UNSET


class _Request(Struct, forbid_unknown_fields=True):
    hook: Any = UNSET
    hookInstance: Any = UNSET  # noqa: N815 - CDS Hooks' name
    fhirServer: Any = UNSET  # noqa: N815 - CDS Hooks' name
    fhirAuthorization: Any = UNSET  # noqa: N815 - CDS Hooks' name
    context: Any = UNSET
    prefetch: _Prefetch | None | UnsetType = UNSET
    extension: Any = UNSET


assert set(_Prefetch.__struct_fields__) == {
    PATIENT_KEY,
    LIVER_LABS_KEY,
    MEDICATIONS_KEY,
    CONDITIONS_KEY,
}, "the lane's prefetch keys are the services' prefetch keys"
_DECODER = msgspec.json.Decoder(_Request, float_hook=float_or_refuse)


def _decode_in_lane(body: bytes, max_depth: int) -> LaneBody | None:
    """Decode `body` with its lab Bundle read in the lane, or None: decode it as dicts.

    The caller has checked what `decode_json_body` checks before decoding (UTF-8, depth).
    """
    if _LABS_KEY_BYTES not in body or has_too_many_digits(body):
        return None
    try:
        request = _DECODER.decode(body)
    except (msgspec.DecodeError, ValueError):  # ValueError: a float past the largest double
        return None
    prefetch = request.prefetch
    if prefetch is None or prefetch is UNSET:
        return None
    bundle = prefetch.liverLabs
    if bundle is None or bundle is UNSET:
        return None
    if bundle.link is not UNSET and next_link({"resourceType": "Bundle", "link": bundle.link}):
        return None  # paged: the rest is fetched and read with the first page
    labs = read_lab_bundle(bundle, _LABS_PATH)
    if labs is None:
        return None
    decoded = _sent(request, leaving_out="prefetch")
    sent = _sent(prefetch, leaving_out=LIVER_LABS_KEY)
    # The Bundle's shape without its entries, which were read here.
    sent[LIVER_LABS_KEY] = {"resourceType": "Bundle", "entry": []}
    if bundle.link is not UNSET:
        sent[LIVER_LABS_KEY]["link"] = bundle.link
    decoded["prefetch"] = sent
    return LaneBody(decoded, labs, body, max_depth)


def _sent(struct: Struct, *, leaving_out: str) -> dict[str, Any]:
    """The keys the request sent in `struct` (but `leaving_out`), with their values."""
    return {
        name: value
        for name in struct.__struct_fields__
        if name != leaving_out and (value := getattr(struct, name)) is not UNSET
    }


def check_lane(labs: TypedLabs, limits: RequestLimits | None) -> None:
    """Raise `LaneDeclined` when a limit would refuse (or have to measure) a lab Bundle entry."""
    if limits is None:
        return
    if (
        labs.entry_count > limits.max_bundle_entries
        or labs.has_contained
        or labs.most_ranges > limits.max_reference_ranges
    ):
        raise LaneDeclined


def check_lane_identity(labs: TypedLabs, identity: PatientIdentity) -> None:
    """Raise `LaneDeclined` unless every lab names the patient as `Patient/<patientId>`."""
    plain = identity.plain_reference
    if plain is None or any(reference != plain for reference in labs.subject_references):
        raise LaneDeclined
