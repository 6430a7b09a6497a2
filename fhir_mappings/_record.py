"""Read one patient's FHIR R4 resources into a `PatientRecord` (CDS Hooks 2.0 prefetch/context).

One pass sorts the resources by what the rules use; only those are validated and mapped:
liver-test Observations (mapped LOINC), mipomersen MedicationRequests and the Medications they
reference, and Conditions on the liver lists. Everything else is ignored unread, so a large
whole-patient Bundle costs little. An invalid resource becomes a `SkippedResource` (and, for a
liver test, an `UnusableResult`); it never fails the record. A MedicationRequest that is
recognisably mipomersen by its medication elements stays a mipomersen order even when another
element is invalid (policy 15): the order is read from what can be read and the problem is kept.
Resources the caller could not attribute to the patient (`_identity`) are named, never used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

from msgspec import Struct

from fhir_mappings._budget import charge_small_resource
from fhir_mappings._conditions import listed_coding, read_liver_condition
from fhir_mappings._identity import IdentityProblem
from fhir_mappings._medications import (
    MedicationIndex,
    MedicationSource,
    mipomersen_match,
    read_medication_order,
)
from fhir_mappings._observations import (
    effective_day,
    invalid_result,
    liver_test_code,
    read_lab_result,
    reads_as_usable,
)
from fhir_mappings._ordinary_observations import OrdinaryRead, OrdinaryReader
from fhir_mappings._resources import FhirItem, resource_ref
from fhir_mappings._typed_labs import TypedLabs
from fhir_mappings._validation import (
    ValidationScope,
    scope_in_force,
    validation_problem,
    validation_scope,
)
from fhir_mappings.values import (
    Analyte,
    Bound,
    LabResult,
    LiverCondition,
    MedicationCodes,
    MedicationOrder,
    PatientRecord,
    ReadingWindow,
    SkippedResource,
    UnusableReason,
    UnusableResult,
)

_NO_EXTRA_CODES = MedicationCodes()


def read_patient_record(
    items: Iterable[FhirItem],
    *,
    draft_orders: Iterable[FhirItem] = (),
    medication_codes: MedicationCodes = _NO_EXTRA_CODES,
    window: ReadingWindow | None = None,
    unattributed: Iterable[tuple[FhirItem, IdentityProblem]] = (),
    validation: ValidationScope = ValidationScope.CONSUMED,
    typed_labs: TypedLabs | None = None,
) -> PatientRecord:
    """Return what the rules need from the prefetch `items` and the `draft_orders`.

    MedicationRequests from `draft_orders` become orders with `is_draft_order=True`; of the other
    draft resources only Medications are read, to resolve references from either source. With a
    `window`, liver results outside it are neither read nor validated (a long history costs
    little more than its JSON); without one, every liver result is read. `unattributed` are
    resources whose patient cannot be told (no subject): those the rules would read are named
    as unusable or skipped, and never used. `validation` says which elements of each resource
    read must be valid FHIR: those the rules read (the default) or every one. `typed_labs`
    are liver results already read from typed structs (`_typed_labs`, consumed scope only);
    `items` then hold no other Observation.
    """
    with validation_scope(validation):
        return _read_record(items, draft_orders, medication_codes, window, unattributed, typed_labs)


def _read_record(
    items: Iterable[FhirItem],
    draft_orders: Iterable[FhirItem],
    medication_codes: MedicationCodes,
    window: ReadingWindow | None,
    unattributed: Iterable[tuple[FhirItem, IdentityProblem]],
    typed_labs: TypedLabs | None = None,
) -> PatientRecord:
    reader = _RecordReader(medication_codes)
    # Ordinary Observations are validated and read in one walk, the rest by the general path;
    # the whole-resource scope has no one-walk reader.
    ordinary = OrdinaryReader() if scope_in_force() is ValidationScope.CONSUMED else None
    observations: list[_Candidate] = []
    requests: list[tuple[FhirItem, bool]] = []
    medications: list[FhirItem] = []
    codes = _LiverCodes()
    if typed_labs is not None:
        for typed in typed_labs.reads:
            result = typed.result
            # Positional (a long history makes thousands): no item, no reader, `known` and its
            # day, nothing unvalidated, tried.
            observations.append(
                _Candidate(
                    len(observations), None, result.analyte, result.loinc, None, typed, typed.day,
                    None, True,
                )
            )  # fmt: skip
    for item in items:
        resource_type = item.resource_type
        if resource_type == "Observation":
            test = codes.of(item.resource)
            if test is not None:
                # Those the window reads whatever their age are read now, while at hand.
                eager = (
                    window is None
                    or window.older_analytes is None
                    or test[0] in window.older_analytes
                )
                known = _one_walk(ordinary, item, *test) if eager else None
                day = known.day if known is not None else effective_day(item.resource)
                observations.append(
                    _Candidate(
                        len(observations), item, *test, ordinary, known=known, day=day,
                        tried=eager,
                    )
                )  # fmt: skip
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
    reader.read_observations(observations, window)
    index = MedicationIndex(medications)
    for item, is_draft_order in requests:
        reader.read_medication_request(item, index, is_draft_order=is_draft_order)
    for item, problem in unattributed:
        reader.name_unattributed(item, problem, index)
    return reader.record()


# A struct, not a dataclass: a long history makes thousands, and one costs a fifth as much to
# make. It refers to no other candidate (so to no cycle): the garbage collector need not track it.
class _Candidate(Struct, gc=False):
    """A liver-test Observation: its place in the input, its (cheap) day and what is read.

    `known` is set once the one-walk `reader` found it valid and read it; it is then never
    validated or read again. Those the window may skip unread are left for it to ask about.
    `day` is `known.day`, or `effective_day` of the resource.
    """

    order: int
    item: FhirItem | None  # None: read from typed structs (`known` is set)
    analyte: Analyte
    loinc: str
    reader: OrdinaryReader | None = None
    known: OrdinaryRead | None = None
    day: date | None = None
    unvalidated: LabResult | UnusableResult | None = None  # `read()` before validation
    tried: bool = False  # the one-walk reader was asked

    @property
    def fhir_item(self) -> FhirItem:
        """The resource, for the reads that need it (those without `known`: never typed)."""
        assert self.item is not None, "a typed result is read already"
        return self.item

    def read_in_one_walk(self) -> OrdinaryRead | None:
        """Ask the one-walk reader once; return what it read (None: the general path reads)."""
        if not self.tried:
            self.tried = True
            self.known = _one_walk(self.reader, self.fhir_item, self.analyte, self.loinc)
        return self.known

    def read(self) -> LabResult | UnusableResult:
        """Read the result without validating it (once: the read depends only on the JSON)."""
        if self.unvalidated is None:
            known = self.read_in_one_walk()
            self.unvalidated = (
                known.result
                if known is not None
                else read_lab_result(self.fhir_item, self.analyte, self.loinc)
            )
        return self.unvalidated

    def reads_as_usable(self) -> bool:
        """Return True when `read()` would give a `LabResult` (cheaper than reading it)."""
        if self.known is not None:
            return isinstance(self.known.result, LabResult)
        if self.reader is not None:
            usable = self.reader.reads_as_usable(self.fhir_item, self.analyte)
            if usable is not None:
                return usable
        return reads_as_usable(self.fhir_item, self.analyte)


class _LiverCodes:
    """`liver_test_code`, remembering the answer for the few `code` elements a record repeats.

    The answer depends only on the element's JSON, and an element equal (`==`, in C) to one
    already asked about gives the same answer: the system and code it reads are strings, and a
    string equals only a string.
    """

    _REMEMBERED = 8  # a lab sends a handful of tests; beyond these, every one is asked

    def __init__(self) -> None:
        self._answers: list[tuple[object, tuple[Analyte, str] | None]] = []

    def of(self, resource: Mapping[str, Any]) -> tuple[Analyte, str] | None:
        concept = resource.get("code")
        for seen, answer in self._answers:
            if seen == concept:
                return answer
        answer = liver_test_code(resource)
        if len(self._answers) < self._REMEMBERED:
            self._answers.append((concept, answer))
        return answer


def _one_walk(
    reader: OrdinaryReader | None, item: FhirItem, analyte: Analyte, loinc: str
) -> OrdinaryRead | None:
    """Validate and read `item` in one walk, or None: the general path must."""
    if reader is None or not charge_small_resource(item.path, item.resource):
        return None
    return reader.read(item, analyte, loinc)


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
        self._excluded: list[SkippedResource] = []
        self._medication_problems: dict[str, SkippedResource | None] = {}
        self._observation_cache: dict[int, LabResult | UnusableResult] = {}

    def read_observations(self, candidates: list[_Candidate], window: ReadingWindow | None) -> None:
        """Read the liver results the window keeps (all of them without a window)."""
        if window is None:
            chosen = candidates
        else:
            chosen = _in_window(candidates, window, self._read_observation)
        for candidate in sorted(chosen, key=lambda c: c.order):  # keep the input's order
            result = self._read_observation(candidate)
            if isinstance(result, LabResult):
                self._lab_results.append(result)
            elif isinstance(result, UnusableResult):
                self._unusable.append(result)

    def _read_observation(self, candidate: _Candidate) -> LabResult | UnusableResult:
        """Validate and read one liver-test Observation (once: later calls reuse the answer)."""
        if candidate.known is not None:  # valid: the one-walk reader checked it
            return candidate.known.result
        cached = self._observation_cache.get(candidate.order)
        if cached is not None:
            return cached
        if candidate.read_in_one_walk() is not None:  # valid: the one-walk reader checked it
            return candidate.read()
        item = candidate.fhir_item
        problem = validation_problem(item)
        result: LabResult | UnusableResult
        if problem is not None:
            self._skipped.append(problem)
            result = invalid_result(item, candidate.analyte, candidate.loinc, problem)
        else:
            result = candidate.read()
        self._observation_cache[candidate.order] = result
        return result

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
        """Add a mipomersen MedicationRequest of any status; ignore any other.

        Identity comes from the raw medication elements, before validation (policy 15): an
        order that names mipomersen stays one whatever else is wrong with it, and the problem
        is kept so the card names the element that could not be read.
        """
        source = index.medication_of(item.resource)
        medication = source.resource if source is not None else None
        matched_by = mipomersen_match(item.resource, medication, self._codes)
        if matched_by is None:
            return
        problem = validation_problem(item)
        if problem is not None:
            problem = replace(problem, read_in_part=True)
            self._skipped.append(problem)
        if source is not None and source.item is not None and not self._is_valid_medication(source):
            problem = problem or self._medication_problems[source.item.path]
        self._orders.append(
            read_medication_order(
                item, medication, matched_by, is_draft_order=is_draft_order, problem=problem
            )
        )

    def name_unattributed(
        self, item: FhirItem, problem: IdentityProblem, index: MedicationIndex
    ) -> None:
        """Name a resource the rules would read but whose patient cannot be told."""
        resource = item.resource
        skipped = SkippedResource(problem.resource_type, problem.id, problem.path, problem.message)
        if item.resource_type == "Observation":
            test = liver_test_code(resource)
            if test is not None:
                self._excluded.append(skipped)
                self._unusable.append(
                    UnusableResult(
                        test[0],
                        test[1],
                        UnusableReason.UNATTRIBUTED,
                        problem.message,
                        resource_ref(item),
                    )
                )
        elif item.resource_type == "Condition":
            if listed_coding(resource) is not None:
                self._excluded.append(skipped)
                self._skipped.append(skipped)
        elif item.resource_type == "MedicationRequest":
            source = index.medication_of(resource)
            medication = source.resource if source is not None else None
            if mipomersen_match(resource, medication, self._codes) is not None:
                self._excluded.append(skipped)
                self._skipped.append(skipped)

    def record(self) -> PatientRecord:
        """Return the record read so far."""
        return PatientRecord(
            lab_results=tuple(self._lab_results),
            unusable_results=tuple(self._unusable),
            medication_orders=tuple(self._orders),
            conditions=tuple(self._conditions),
            skipped=tuple(self._skipped),
            excluded=tuple(self._excluded),
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


def _in_window(
    candidates: list[_Candidate],
    window: ReadingWindow,
    read: Callable[[_Candidate], LabResult | UnusableResult],
) -> list[_Candidate]:
    """Return the candidates inside `window`, reading (and validating) only what that needs.

    Per analyte, results are read newest first until its latest usable result and its latest
    usable exact one are known (every result of that day included). The usable results of the
    anchor analytes read on the way, and `now`, fix where the window is measured from. Results
    with no readable day are always kept; so are older ones that are unusable or invalid (they
    are named on the card, never dropped for being unreadable). With `window.select_older`, the
    older results `keep_older` accepts are all validated but kept only when it chooses them or
    when they are invalid (an invalid result is named whatever its age).
    """
    by_analyte: dict[Analyte, list[_Candidate]] = {}
    for candidate in candidates:
        by_analyte.setdefault(candidate.analyte, []).append(candidate)
    chosen: dict[int, _Candidate] = {}
    anchors: list[datetime] = [window.now]
    for analyte, group in by_analyte.items():
        group.sort(key=lambda c: (c.day is None, c.day or date.min), reverse=True)
        have_usable = have_exact = False
        settled_on: date | None = None
        for candidate in group:
            if settled_on is not None and candidate.day != settled_on:
                break
            chosen[candidate.order] = candidate
            result = read(candidate)
            if isinstance(result, LabResult):
                have_usable = True
                have_exact = have_exact or result.bound is Bound.EXACT
                if analyte in window.anchors:
                    # Any of these may be the one a rule settles on (a floor or a ceiling can
                    # be set aside as ambiguous), so each anchors the window.
                    anchors.append(result.effective)
            if have_usable and have_exact and settled_on is None:
                settled_on = candidate.day
    margin = timedelta(days=1)  # `day` is the day as written, not in UTC
    recent_start = (min(anchors) - window.recent - margin).date()
    older_start = (
        date.min if window.lookback is None else (min(anchors) - window.lookback - margin).date()
    )
    selectable: list[tuple[_Candidate, LabResult]] = []  # what `select_older` chooses from
    select_older, older_analytes, keep_older = (
        window.select_older,
        window.older_analytes,
        window.keep_older,
    )
    for candidate in candidates:
        order, day, known = candidate.order, candidate.day, candidate.known
        inside = day is None or day >= recent_start  # no readable day, or recent
        # `keep_older` may accept the candidate's analyte
        may_keep = older_analytes is None or candidate.analyte in older_analytes
        accepted = None  # what `keep_older` said of the result, once asked
        if select_older is not None and may_keep:
            # Read in one walk: validated already, and its result is the one read
            result = known.result if known is not None else candidate.read()
            if isinstance(result, LabResult):
                accepted = keep_older is None or keep_older(result)
                if accepted:
                    selectable.append((candidate, result))
                    if order not in chosen and not inside:
                        continue  # older: kept only if chosen or invalid, below
                elif known is not None and not inside:
                    continue  # older, valid, and refused: `_worth_keeping` would say so
        if order in chosen:
            continue
        if inside:
            chosen[order] = candidate
        elif (
            day is not None
            and day >= older_start
            and _worth_keeping(candidate, window, may_keep, read, accepted)
        ):
            chosen[order] = candidate
    if select_older is not None and selectable:
        # A result read in one walk is valid; another is validated when asked about
        walked = [candidate.known is not None for candidate, _ in selectable]

        def is_valid(index: int) -> bool:
            return walked[index] or isinstance(read(selectable[index][0]), LabResult)

        selected = set(select_older([result for _, result in selectable], is_valid))
        for index, (candidate, _) in enumerate(selectable):
            # The rest are validated still: an invalid one is named, whatever its age.
            if index in selected or not is_valid(index):
                chosen[candidate.order] = candidate
    return list(chosen.values())


def _worth_keeping(
    candidate: _Candidate,
    window: ReadingWindow,
    may_keep: bool,
    read: Callable[[_Candidate], LabResult | UnusableResult],
    accepted: bool | None = None,
) -> bool:
    """Return True when an older result may matter: `keep_older` accepts it, or it is unusable.

    `may_keep`: `keep_older` may accept the candidate's analyte; `accepted`: what it said of the
    result, when already asked. The result is validated (`read`) so an invalid one is named
    whatever its age, as when every result is read; a result read in one walk was validated
    then, so this costs nothing more.
    """
    keep_older = window.keep_older
    if keep_older is None:
        return True
    result = read(candidate)
    if not isinstance(result, LabResult):
        return True
    if not may_keep:
        return False
    return keep_older(result) if accepted is None else accepted
