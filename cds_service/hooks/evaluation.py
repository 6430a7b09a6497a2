"""Run one CDS Hooks call through the domain: complete the data, choose the orders, apply rules.

No Flask and no HTTP here: fetching goes through the `PrefetchFetcher` protocol (the app gives a
`FhirClient`). Decides whether mipomersen is involved at all (no card otherwise, policy 11)
before asking the EHR's FHIR server for anything, and answers 412 when data the rules need can
be neither found in the prefetch nor fetched (CDS Hooks 2.0.1 § Prefetch).

Every resource is checked to be `context.patientId`'s before it is read (policy 15): one of
another patient's in the request is refused with 400 naming it (the EHR sent an inconsistent
request), one the FHIR server returned with 412 for its key; one that names no patient is
left out and named on the card.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from itertools import chain
from typing import Any, Protocol

from cds_service.errors import BadRequest, FhirFetchError, PreconditionFailed
from cds_service.hooks.cards import CardContext, render_cards
from cds_service.hooks.discovery import (
    CONDITIONS_KEY,
    LIVER_LABS_KEY,
    MEDICATIONS_KEY,
    PATIENT_KEY,
    ServiceDefinition,
    prefetch_templates,
)
from cds_service.hooks.lab_lane import (
    LaneBody,
    LaneDeclined,
    check_lane,
    check_lane_identity,
)
from cds_service.hooks.limits import RequestLimits
from cds_service.hooks.prefetch import FetchedKey, KeyPlan, KeyState, plan_key
from cds_service.hooks.request import HookRequest, parse_hook_request
from cds_service.rules import Evaluation, Occasion, RuleConfig, evaluate, reading_window
from cds_service.rules.therapy import orders_in_scope
from cds_service.settings import Settings
from fhir_mappings import (
    FhirItem,
    IdentityProblem,
    PatientIdentity,
    TypedLabs,
    ValidationScope,
    attribute_items,
    identify_mipomersen_orders,
    read_patient_record,
)
from fhir_mappings.values import MedicationCodes, MedicationOrder

_RULE_KEYS = (LIVER_LABS_KEY, MEDICATIONS_KEY, CONDITIONS_KEY)


class DataSource(StrEnum):
    """Where the data of one prefetch key came from (for the audit trail)."""

    PREFETCH = "prefetch"  # sent by the EHR in the request
    NULL = "null"  # the EHR said there is no data
    FHIR_SERVER = "fhir-server"  # fetched by this service from fhirServer
    PREFETCH_AND_FHIR_SERVER = "prefetch+fhir-server"  # first page sent, the rest fetched
    ABSENT = "absent"  # neither sent nor fetched


class PrefetchFetcher(Protocol):
    """Fetches prefetch keys from a FHIR server (implemented by `fhir_client.FhirClient`)."""

    def check_server(self, base_url: str) -> None:
        """Raise FhirFetchError unless `base_url` may be called."""

    def fetch(
        self, plans: Sequence[KeyPlan], *, base_url: str, token: str | None
    ) -> dict[str, FetchedKey]:
        """Return what the server gave for each plan's key."""


@dataclass(slots=True)
class _Data:
    """The data of one hook call as it is completed, key by key."""

    plans: dict[str, KeyPlan]
    identity: PatientIdentity
    items: dict[str, tuple[FhirItem, ...]] = field(default_factory=dict)
    unattributed: list[tuple[FhirItem, IdentityProblem]] = field(default_factory=list)
    sources: dict[str, DataSource] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def all_items(self, keys: Iterable[str] | None = None) -> list[FhirItem]:
        chosen = self.items.values() if keys is None else (self.items.get(k, ()) for k in keys)
        return list(chain.from_iterable(chosen))

    def keep_own(self, key: str, items: tuple[FhirItem, ...], *, fetched: bool) -> None:
        """Keep this patient's `items` for `key`; refuse another patient's (policy 15)."""
        attributed = attribute_items(items, self.identity)
        if attributed.foreign:
            first = attributed.foreign[0]
            if fetched:
                raise PreconditionFailed(
                    "the FHIR server returned data of another patient",
                    causes={key: f"{first.message} ({first.path})"},
                )
            raise _refused(first, len(attributed.foreign))
        self.items[key] = attributed.own
        self.unattributed.extend(attributed.unattributed)


@dataclass(frozen=True, slots=True)
class HookEvaluation:
    """The evaluation (None: mipomersen not involved) and what is known about its data."""

    evaluation: Evaluation | None
    data_sources: dict[str, DataSource]
    notes: tuple[str, ...] = ()


def evaluate_hook(
    request: HookRequest,
    *,
    rules: RuleConfig,
    medication_codes: MedicationCodes,
    now: datetime,
    fetcher: PrefetchFetcher | None = None,
    validation: ValidationScope = ValidationScope.CONSUMED,
    typed_labs: TypedLabs | None = None,
) -> HookEvaluation:
    """Evaluate a hook call, fetching missing prefetch data only when mipomersen is involved.

    `typed_labs` are the lab Bundle's Observations read in the lab lane (`lab_lane`); the
    request's own Bundle then holds no entries. `LaneDeclined` is raised, before anything is
    fetched, when they are not what the general path would read as this patient's.
    """
    plans = {key: plan_key(request, key, t) for key, t in prefetch_templates().items()}
    identity = PatientIdentity.of_request(
        request.patient_id,
        [*request.draft_orders, *chain.from_iterable(plan.items for plan in plans.values())],
        server_base=request.fhir_server,
    )
    if typed_labs is not None:
        if validation is not ValidationScope.CONSUMED or any(
            item.resource_type == "Observation" for plan in plans.values() for item in plan.items
        ):
            raise LaneDeclined
        check_lane_identity(typed_labs, identity)
    drafts = attribute_items(request.draft_orders, identity, subject_optional=True)
    if drafts.foreign:
        raise _refused(drafts.foreign[0], len(drafts.foreign))
    data = _Data(plans, identity)
    for key, plan in data.plans.items():
        if plan.state in (KeyState.COMPLETE, KeyState.PARTIAL):
            data.keep_own(key, plan.items, fetched=False)
            data.sources[key] = DataSource.PREFETCH
        elif plan.state is KeyState.NULL:
            data.sources[key] = DataSource.NULL

    occasion = Occasion.ORDERING if request.is_order_hook else Occasion.CHART_REVIEW
    selections = request.selections if request.hook == "order-select" else None
    if not request.is_order_hook:
        _complete(request, data, (MEDICATIONS_KEY,), fetcher)
        _require(data, (MEDICATIONS_KEY,))
    # Involvement by the medication elements alone, before anything is fetched or validated.
    if not orders_in_scope(
        _identified_orders(request, data, medication_codes),
        occasion=occasion,
        selections=selections,
    ):
        return _done(None, data)
    _complete(request, data, (*_RULE_KEYS, PATIENT_KEY), fetcher)
    _require(data, _RULE_KEYS)
    if PATIENT_KEY in data.failures:  # optional: the rules do not need it
        data.notes.append(f"{PATIENT_KEY} could not be obtained: {data.failures[PATIENT_KEY]}")
    record = read_patient_record(
        data.all_items(),
        draft_orders=request.draft_orders,
        medication_codes=medication_codes,
        window=reading_window(rules, now),
        unattributed=data.unattributed,
        validation=validation,
        typed_labs=typed_labs,
    )
    orders = orders_in_scope(record.medication_orders, occasion=occasion, selections=selections)
    evaluation = evaluate(record, orders=orders, occasion=occasion, config=rules, now=now)
    return _done(evaluation, data)


def _done(evaluation: Evaluation | None, data: _Data) -> HookEvaluation:
    sources = {key: data.sources.get(key, DataSource.ABSENT) for key in data.plans}
    return HookEvaluation(evaluation, sources, tuple(data.notes))


def _identified_orders(
    request: HookRequest, data: _Data, codes: MedicationCodes
) -> tuple[MedicationOrder, ...]:
    """Return the mipomersen orders involvement depends on: the drafts, or the medications key."""
    if request.is_order_hook:
        candidates, is_draft = request.draft_orders, True
        medications = [*data.all_items(), *request.draft_orders]
    else:
        candidates, is_draft = tuple(data.all_items((MEDICATIONS_KEY,))), False
        medications = list(candidates)
    return identify_mipomersen_orders(
        [(item, is_draft) for item in candidates if item.resource_type == "MedicationRequest"],
        [item for item in medications if item.resource_type == "Medication"],
        codes,
    )


def _complete(
    request: HookRequest, data: _Data, keys: Sequence[str], fetcher: PrefetchFetcher | None
) -> None:
    """Fetch the keys among `keys` that the prefetch lacks or only began (paged)."""
    wanted = [
        data.plans[key]
        for key in keys
        if data.plans[key].state in (KeyState.MISSING, KeyState.PARTIAL)
        and key not in data.failures
        and data.sources.get(key)
        not in (DataSource.FHIR_SERVER, DataSource.PREFETCH_AND_FHIR_SERVER)
    ]
    if not wanted:
        return
    reason = _why_not_fetchable(request, fetcher)
    if reason is not None or fetcher is None or request.fhir_server is None:
        for plan in wanted:
            data.failures[plan.key] = _missing_cause(plan, reason)
        return
    unresolved = [plan for plan in wanted if plan.url is None]
    for plan in unresolved:
        data.failures[plan.key] = f"its template cannot be used ({plan.unresolved})"
    fetchable = [plan for plan in wanted if plan.url is not None]
    token = request.fhir_authorization.access_token if request.fhir_authorization else None
    results = fetcher.fetch(fetchable, base_url=request.fhir_server, token=token)
    for plan in fetchable:
        fetched = results[plan.key]
        if fetched.failure is not None:
            data.failures[plan.key] = fetched.failure
            continue
        data.keep_own(plan.key, fetched.items, fetched=True)
        data.sources[plan.key] = (
            DataSource.PREFETCH_AND_FHIR_SERVER
            if plan.state is KeyState.PARTIAL
            else DataSource.FHIR_SERVER
        )
        data.notes.extend(f"{plan.key}: {note}" for note in fetched.notes)


def _refused(problem: IdentityProblem, count: int) -> BadRequest:
    more = f" (and {count - 1} more)" if count > 1 else ""
    return BadRequest(
        f"{problem.message}: a request must hold only this patient's data{more}",
        path=problem.path,
    )


def _why_not_fetchable(request: HookRequest, fetcher: PrefetchFetcher | None) -> str | None:
    if request.fhir_server is None:
        return "the request has no fhirServer to fetch it from"
    if fetcher is None:
        return "this service was not given a FHIR client"
    try:
        fetcher.check_server(request.fhir_server)
    except FhirFetchError as error:
        return str(error)
    return None


def _missing_cause(plan: KeyPlan, reason: str | None) -> str:
    if plan.state is KeyState.PARTIAL:
        return f"only a first page was sent, and {reason}"
    return f"not in the prefetch (absent or an OperationOutcome), and {reason}"


def _require(data: _Data, keys: Sequence[str]) -> None:
    causes = {key: data.failures[key] for key in keys if key in data.failures}
    if causes:
        raise PreconditionFailed("required FHIR data could not be obtained", causes=causes)


@dataclass(frozen=True, slots=True)
class HookAnswer:
    """The outcome of one hook call: the evaluation (None: mipomersen not involved) and body."""

    request: HookRequest
    evaluation: Evaluation | None
    body: dict[str, Any]
    data_sources: dict[str, DataSource] = field(default_factory=dict)  # prefetch key -> source


def answer_hook(
    body: Any,
    *,
    service: ServiceDefinition,
    settings: Settings,
    now: datetime,
    new_id: Callable[[], str],
    fetcher: PrefetchFetcher | None = None,
    limits: RequestLimits | None = None,
) -> HookAnswer:
    """Parse a decoded request for `service`, evaluate it and render the response body.

    `limits` bound what the request may ask for (`request_limits`; the HTTP service's);
    None, for the command line, bounds nothing. A `LaneBody` (`decode_hook_body`) whose lab
    lane declines is decoded again as dicts and answered the general way.
    """
    if isinstance(body, LaneBody):
        try:
            return _answer(
                body, body.labs, service=service, settings=settings, now=now,
                new_id=new_id, fetcher=fetcher, limits=limits,
            )  # fmt: skip
        # LaneDeclined is raised before anything is fetched; a BadRequest comes from parsing
        # or the first checks, and the general path words it.
        except (LaneDeclined, BadRequest):
            body = body.as_dicts()
    return _answer(
        body, None, service=service, settings=settings, now=now, new_id=new_id,
        fetcher=fetcher, limits=limits,
    )  # fmt: skip


def _answer(
    body: Any,
    typed_labs: TypedLabs | None,
    *,
    service: ServiceDefinition,
    settings: Settings,
    now: datetime,
    new_id: Callable[[], str],
    fetcher: PrefetchFetcher | None,
    limits: RequestLimits | None,
) -> HookAnswer:
    """`answer_hook`, its lab Bundle's Observations given as `typed_labs` (lab lane) or not."""
    request = parse_hook_request(body, expected_hook=service.hook, limits=limits)
    if typed_labs is not None:
        check_lane(typed_labs, limits)
    outcome = evaluate_hook(
        request,
        rules=settings.rules,
        medication_codes=settings.medication_codes,
        now=now,
        fetcher=fetcher,
        validation=settings.fhir_validation,
        typed_labs=typed_labs,
    )
    context = CardContext(
        is_order_hook=request.is_order_hook,
        patient_reference=request.patient_reference,
        user_reference=request.user_id,
        new_id=new_id,
        data_notes=outcome.notes,
    )
    cards = render_cards(outcome.evaluation, context)
    return HookAnswer(request, outcome.evaluation, {"cards": cards}, outcome.data_sources)
