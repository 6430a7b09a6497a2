"""Read one patient's FHIR R4 resources into a `PatientRecord` (CDS Hooks 2.0 prefetch/context).

One pass sorts the resources by what the rules use; only those are validated and mapped:
liver-test Observations (mapped LOINC), mipomersen MedicationRequests and the Medications they
reference, and Conditions on the liver lists. Everything else is ignored unread, so a large
whole-patient Bundle costs little. An invalid resource becomes a `SkippedResource` (and, for a
liver test, an `UnusableResult`); it never fails the record.
"""

from __future__ import annotations

from collections.abc import Iterable

from fhir_mappings._conditions import listed_coding, read_liver_condition
from fhir_mappings._medications import (
    MedicationIndex,
    MedicationSource,
    mipomersen_match,
    read_medication_order,
)
from fhir_mappings._observations import (
    invalid_result,
    liver_test_code,
    read_lab_result,
)
from fhir_mappings._resources import FhirItem
from fhir_mappings._validation import validation_problem
from fhir_mappings.values import (
    LabResult,
    LiverCondition,
    MedicationCodes,
    MedicationOrder,
    PatientRecord,
    SkippedResource,
    UnusableResult,
)

_NO_EXTRA_CODES = MedicationCodes()


def read_patient_record(
    items: Iterable[FhirItem],
    *,
    draft_orders: Iterable[FhirItem] = (),
    medication_codes: MedicationCodes = _NO_EXTRA_CODES,
) -> PatientRecord:
    """Return what the rules need from the prefetch `items` and the `draft_orders`.

    MedicationRequests from `draft_orders` become orders with `is_draft_order=True`; of the other
    draft resources only Medications are read, to resolve references from either source.
    """
    reader = _RecordReader(medication_codes)
    requests: list[tuple[FhirItem, bool]] = []
    medications: list[FhirItem] = []
    for item in items:
        resource_type = item.resource_type
        if resource_type == "Observation":
            reader.read_observation(item)
        elif resource_type == "Condition":
            reader.read_condition(item)
        elif resource_type == "MedicationRequest":
            requests.append((item, False))
        elif resource_type == "Medication":
            medications.append(item)
    for item in draft_orders:
        if item.resource_type == "MedicationRequest":
            requests.append((item, True))
        elif item.resource_type == "Medication":
            medications.append(item)
    index = MedicationIndex(medications)
    for item, is_draft_order in requests:
        reader.read_medication_request(item, index, is_draft_order=is_draft_order)
    return reader.record()


class _RecordReader:
    """Collect the values of one record while the resources are read."""

    def __init__(self, medication_codes: MedicationCodes) -> None:
        """Start an empty record that matches mipomersen with `medication_codes` too."""
        self._codes = medication_codes
        self._lab_results: list[LabResult] = []
        self._unusable: list[UnusableResult] = []
        self._orders: list[MedicationOrder] = []
        self._conditions: list[LiverCondition] = []
        self._skipped: list[SkippedResource] = []
        self._medication_problems: dict[str, SkippedResource | None] = {}

    def read_observation(self, item: FhirItem) -> None:
        """Add a liver-test Observation's result; ignore any other Observation."""
        test = liver_test_code(item.resource)
        if test is None:
            return
        analyte, loinc = test
        problem = validation_problem(item)
        if problem is not None:
            self._skipped.append(problem)
            self._unusable.append(invalid_result(item, analyte, loinc, problem))
            return
        result = read_lab_result(item, analyte, loinc)
        if isinstance(result, LabResult):
            self._lab_results.append(result)
        else:
            self._unusable.append(result)

    def read_condition(self, item: FhirItem) -> None:
        """Add a Condition on the liver lists that counts; ignore any other Condition."""
        listed = listed_coding(item.resource)
        if listed is None:
            return
        problem = validation_problem(item)
        if problem is not None:
            self._skipped.append(problem)
            return
        condition = read_liver_condition(item, *listed)
        if condition is not None:
            self._conditions.append(condition)

    def read_medication_request(
        self, item: FhirItem, index: MedicationIndex, *, is_draft_order: bool
    ) -> None:
        """Add a mipomersen MedicationRequest of any status; ignore any other."""
        source = index.medication_of(item.resource)
        medication = source.resource if source is not None else None
        if mipomersen_match(item.resource, medication, self._codes) is None:
            return
        problem = validation_problem(item)
        if problem is not None:
            self._skipped.append(problem)
            return
        if source is not None and not self._is_valid_medication(source):
            medication = None  # an invalid Medication cannot say what the drug is
        matched_by = mipomersen_match(item.resource, medication, self._codes)
        if matched_by is not None:
            self._orders.append(
                read_medication_order(item, medication, matched_by, is_draft_order=is_draft_order)
            )

    def record(self) -> PatientRecord:
        """Return the record read so far."""
        return PatientRecord(
            lab_results=tuple(self._lab_results),
            unusable_results=tuple(self._unusable),
            medication_orders=tuple(self._orders),
            conditions=tuple(self._conditions),
            skipped=tuple(self._skipped),
        )

    def _is_valid_medication(self, source: MedicationSource) -> bool:
        """Validate a referenced Medication once, reporting it the first time it fails."""
        if source.item is None:  # contained: validated with its MedicationRequest
            return True
        path = source.item.path
        if path not in self._medication_problems:
            problem = validation_problem(source.item)
            self._medication_problems[path] = problem
            if problem is not None:
                self._skipped.append(problem)
        return self._medication_problems[path] is None
