"""Turn an `Evaluation` into CDS Hooks 2.0.1 cards; the only module that words anything.

One decision card at most (the most severe finding), with the deciding number in the summary,
a Markdown table of the results used and of unusable ones, the rule's source, suggestions the
EHR can apply with one click, override reasons, and the namespaced extension documented in
openapi.yaml. Empty or null fields are never emitted. The clock and the UUID factory come from
the caller, so golden responses compare byte for byte.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from jinja2 import Environment, StrictUndefined, Template

from cds_service.rules import AssessedResult, DecisionKind, Evaluation, Finding, FollowUpTest
from cds_service.rules.decision import reason_table
from fhir_mappings import shorten
from fhir_mappings.values import (
    Analyte,
    Bound,
    LiverCondition,
    MedicationOrder,
    SkippedResource,
    UnusableResult,
)

EXTENSION_KEY = "io.github.mipomersen-cds"
OVERRIDE_REASON_SYSTEM = "https://mipomersen-cds.github.io/fhir/CodeSystem/override-reason"
SOURCE_PREFIX = "mipomersen-cds"
SUMMARY_LIMIT = 139  # CDS Hooks: "<140-character summary"
MAX_TABLE_ROWS = 12


_FOLLOW_UP_NAMES: dict[FollowUpTest, str] = {
    FollowUpTest.HEPATIC_FUNCTION_PANEL: "Hepatic function 2000 panel - Serum or Plasma",
    FollowUpTest.INR: "INR in Platelet poor plasma by Coagulation assay",
}
_FOLLOW_UP_SHORT: dict[FollowUpTest, str] = {
    FollowUpTest.HEPATIC_FUNCTION_PANEL: "hepatic function panel",
    FollowUpTest.INR: "INR",
}


@dataclass(frozen=True, slots=True)
class CardContext:
    """What the cards need to know about the call besides the evaluation."""

    is_order_hook: bool
    patient_reference: str
    user_reference: str | None
    new_id: Callable[[], str]
    data_notes: tuple[str, ...] = ()  # e.g. a paging limit reached, optional data not fetched


def render_cards(evaluation: Evaluation | None, context: CardContext) -> list[dict[str, Any]]:
    """Return the cards for an evaluation: none, or one decision card."""
    if evaluation is None or evaluation.decision is None:
        return []
    return [_decision_card(evaluation, evaluation.decision, context)]


def _decision_card(
    evaluation: Evaluation, finding: Finding, context: CardContext
) -> dict[str, Any]:
    suggestions = _suggestions(evaluation, finding, context)
    card: dict[str, Any] = {
        "uuid": context.new_id(),
        "summary": summary(finding),
        "detail": detail(evaluation, finding, context.data_notes),
        "indicator": reason_table().indicators[finding.kind],
        "source": {"label": f"{SOURCE_PREFIX}: {finding.source}"},
    }
    if suggestions:
        card["suggestions"] = suggestions
        card["selectionBehavior"] = "any"
    card["overrideReasons"] = [
        {"system": OVERRIDE_REASON_SYSTEM, "code": code, "display": display}
        for code, display in _OVERRIDE_REASONS[finding.kind]
    ]
    card["extension"] = {
        EXTENSION_KEY: {
            "decision": finding.kind.value,
            "reason": finding.reason.code,
            "rule": finding.rule,
            "profile": evaluation.profile.value,
        }
    }
    return card


# --- summary ------------------------------------------------------------------------------


def summary(finding: Finding) -> str:
    """Return the card summary: the action and the deciding number, under 140 characters."""
    return shorten(_summary_text(finding), SUMMARY_LIMIT, collapse_whitespace=True)


def _summary_text(finding: Finding) -> str:
    return _render(_templates().summaries[finding.reason.code], finding)


# --- detail -------------------------------------------------------------------------------


def detail(evaluation: Evaluation, finding: Finding, data_notes: tuple[str, ...] = ()) -> str:
    """Return the card detail in GitHub-flavoured Markdown."""
    parts = [_advice(finding)]
    if evaluation.orders:
        parts.append(f"Order: {_md(', '.join(_order_name(o) for o in evaluation.orders))}.")
    table = _results_table(evaluation, finding)
    if table:
        parts.append(table)
    defaults = sorted(
        {row.result.analyte for row in _table_rows(evaluation, finding) if row.uln_is_default},
        key=list(Analyte).index,
    )
    if defaults:
        parts.append(
            f"No usable reference range was sent for {_names(defaults)}: the default ULN was used "
            "(project policy 4)."
        )
    history = _history(evaluation)
    if history:
        parts.append(history)
    unusable = _unusable_table(evaluation.unusable)
    if unusable:
        parts.append(unusable)
    in_part = [skipped for skipped in evaluation.skipped if skipped.read_in_part]
    if in_part:
        parts.append(
            "**Mipomersen orders read in part** (the rules used what could be read):\n\n"
            + _skipped_lines(in_part)
        )
    skipped = [skipped for skipped in evaluation.skipped if not skipped.read_in_part]
    if skipped:
        parts.append(
            "**Records skipped because they are not valid FHIR or name no patient:**\n\n"
            + _skipped_lines(skipped)
        )
    if data_notes:
        lines = [f"- {_md(note)}" for note in data_notes]
        parts.append("**Data not complete:**\n\n" + "\n".join(lines))
    others = [other for other in evaluation.findings if not _same_event(other, finding)]
    if others:
        lines = [
            f"- {_md(shorten(_summary_text(other), 200, collapse_whitespace=True))}"
            for other in others
        ]
        parts.append("**Also:**\n\n" + "\n".join(lines))
    parts.append(
        f"Rule `{finding.rule}` ({_md(finding.source)}), profile `{evaluation.profile.value}`, "
        f"evaluated {_date(evaluation.now)}."
    )
    return "\n\n".join(parts)


def _skipped_lines(skipped: Iterable[SkippedResource]) -> str:
    return "\n".join(
        f"- {_md(item.resource_type)} at `{_code(item.path)}`: {_md(item.message)}"
        for item in skipped
    )


def _same_event(other: Finding, finding: Finding) -> bool:
    """Return True when `other` is `finding`, or a milder reading of the same deciding result."""
    if other is finding:
        return True
    return (
        other.deciding is not None
        and finding.deciding is not None
        and other.deciding.result == finding.deciding.result
    )


def _advice(finding: Finding) -> str:
    """Return the opening sentence: what to do and why, in the label's terms."""
    return _render(_templates().advice[finding.reason.code], finding)


@dataclass(frozen=True, slots=True)
class _Templates:
    summaries: dict[str, Template]
    advice: dict[str, Template]


@cache
def _templates() -> _Templates:
    """Compile the wording of `rules/reasons.toml` once; a missing variable fails loudly."""
    table = reason_table()
    environment = Environment(undefined=StrictUndefined, autoescape=False)
    return _Templates(
        summaries={code: environment.from_string(t) for code, t in table.summaries.items()},
        advice={code: environment.from_string(t) for code, t in table.advice.items()},
    )


def _render(template: Template, finding: Finding) -> str:
    return template.render(wording_context(finding))


def wording_context(finding: Finding) -> dict[str, str]:
    """Return the values a reason's templates may quote, formatted and escaped for the card."""
    condition = _condition_name(finding.condition)
    unusable = finding.unusable
    bilirubin = _first_of(finding.supporting, Analyte.TOTAL_BILIRUBIN)
    return {
        "deciding": _quote(finding.deciding) if finding.deciding else "liver tests",
        "condition": condition,
        "condition_md": _md(condition),
        "bilirubin": _multiple(bilirubin) if bilirubin else "",
        "due": _date(finding.due),
        "due_phrase": _due_phrase(finding),
        "follow_up": _follow_up_phrase(finding),
        "missing": _names(finding.missing),
        "last_tested": f"last on {_date(finding.last_tested)}"
        if finding.last_tested
        else "none on file",
        "unusable": _unusable_name(unusable),
        # The sentence ends after it: a detail's own full stop would make two
        "unusable_why_md": f": {_md(unusable.detail.removesuffix('.'))}" if unusable else "",
    }


def no_card_text(evaluation: Evaluation | None) -> str:
    """Return what to say when there is no card: not involved, or all clear (policy 11)."""
    no_card = reason_table().no_card
    if evaluation is None:
        return no_card["not-involved"]
    template = Environment(undefined=StrictUndefined).from_string(no_card["all-clear"])
    return template.render(profile=evaluation.profile.value)


def _follow_up_phrase(finding: Finding) -> str:
    if not finding.follow_up:
        return ""
    tests = " and ".join(_FOLLOW_UP_SHORT[test] for test in finding.follow_up)
    return f", and obtain the tests not already done ({tests})"


def _due_phrase(finding: Finding) -> str:
    return f" (by {_date(finding.due)})" if finding.due else ""


def _table_rows(evaluation: Evaluation, finding: Finding) -> list[AssessedResult]:
    """Return the results a clinician needs: the deciding ones, then each test's latest."""
    rows: list[AssessedResult] = []
    seen: set[int] = set()

    def add(row: AssessedResult) -> None:
        if id(row) not in seen and len(rows) < MAX_TABLE_ROWS:
            seen.add(id(row))
            rows.append(row)

    if finding.deciding:
        add(finding.deciding)
    for row in finding.supporting:
        add(row)
    latest: dict[Analyte, AssessedResult] = {}
    for row in evaluation.results:
        latest.setdefault(row.result.analyte, row)
    for analyte in Analyte:
        if analyte in latest:
            add(latest[analyte])
    return rows


def _results_table(evaluation: Evaluation, finding: Finding) -> str:
    rows = _table_rows(evaluation, finding)
    if not rows:
        return ""
    lines = [
        "| Test | Result | × ULN | ULN | Date | ULN source |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        result = row.result
        value = f"{_bound(result.bound)}{_number(result.value)}{_unit(result.unit)}"
        sent = _as_sent(result.reported, result.unit)
        if sent:
            value += f" (sent as {sent})"
        if result.preliminary:
            value += " (preliminary)"
        uln = f"{_number(row.uln)}{_unit(result.unit)}" if row.uln is not None else "n/a"
        source = "n/a" if row.uln is None else "default" if row.uln_is_default else "lab range"
        lines.append(
            f"| {_md(result.analyte.value)} | {_md(value)} | {_multiple(row)} | {_md(uln)} "
            f"| {_date(result.effective)} | {source} |"
        )
    return "**Results used:**\n\n" + "\n".join(lines)


def _history(evaluation: Evaluation) -> str:
    """Return the abnormal results that may not decide (policy 13), one line each."""
    if not evaluation.history or evaluation.history_before is None:
        return ""
    when = (
        f"before this course began ({_date(evaluation.history_before)})"
        if evaluation.history_before == evaluation.therapy_start
        else "before therapy"
    )
    lines = [f"- {_md(_quote(row))}, {when}" for row in evaluation.history]
    heading = "**History** (abnormal results too old to decide; project policy 13):"
    return heading + "\n\n" + "\n".join(lines)


def _unusable_table(unusable: Iterable[UnusableResult]) -> str:
    rows = list(unusable)[:MAX_TABLE_ROWS]
    if not rows:
        return ""
    lines = ["| Test | Date | Why it was not used |", "|---|---|---|"]
    for item in rows:
        when = _date(item.effective) if item.effective else "no date"
        lines.append(f"| {_md(item.analyte.value)} | {when} | {_md(item.detail)} |")
    return "**Results not used:**\n\n" + "\n".join(lines)


# --- suggestions and override reasons ------------------------------------------------------


def _suggestions(
    evaluation: Evaluation, finding: Finding, context: CardContext
) -> list[dict[str, Any]]:
    suggestions: list[dict[str, Any]] = []
    stops = finding.kind in (
        DecisionKind.CONTRAINDICATED,
        DecisionKind.DISCONTINUE,
        DecisionKind.WITHHOLD,
    )
    if stops and context.is_order_hook:
        deletions = [
            {
                "type": "delete",
                "description": f"Remove the draft order for {_order_name(order)}",
                "resourceId": order.source.reference,
            }
            for order in evaluation.orders
            if order.is_draft_order and order.source.reference
        ]
        if deletions:
            suggestions.append(
                {
                    "label": "Remove the mipomersen order",
                    "uuid": context.new_id(),
                    "isRecommended": True,
                    "actions": deletions,
                }
            )
    orders_tests = finding.kind in (DecisionKind.WITHHOLD, DecisionKind.REPEAT_TEST)
    if orders_tests and finding.follow_up:
        due = finding.due or evaluation.now
        names = " and ".join(_FOLLOW_UP_SHORT[test] for test in finding.follow_up)
        suggestions.append(
            {
                "label": f"Order {names} by {_date(due)}",
                "uuid": context.new_id(),
                "isRecommended": not suggestions,
                "actions": [
                    {
                        "type": "create",
                        "description": f"Order {_FOLLOW_UP_SHORT[test]} by {_date(due)}",
                        "resource": _service_request(test, evaluation.now, due, finding, context),
                    }
                    for test in finding.follow_up
                ],
            }
        )
    return suggestions


def _service_request(
    test: FollowUpTest, now: datetime, due: datetime, finding: Finding, context: CardContext
) -> dict[str, Any]:
    start = min(now, due)
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "order",
        "code": {
            "coding": [
                {
                    "system": "http://loinc.org",
                    "code": test.value,
                    "display": _FOLLOW_UP_NAMES[test],
                }
            ],
            "text": _FOLLOW_UP_SHORT[test].capitalize()
            if test is FollowUpTest.HEPATIC_FUNCTION_PANEL
            else "INR",
        },
        "subject": {"reference": context.patient_reference},
        "occurrencePeriod": {"start": _instant(start), "end": _instant(due)},
        "reasonCode": [{"text": f"Mipomersen liver safety: {_summary_text(finding)}"}],
    }
    if context.user_reference and context.user_reference.startswith(
        ("Practitioner/", "PractitionerRole/")
    ):
        resource["requester"] = {"reference": context.user_reference}
    return resource


_OVERRIDES_STOP = (
    ("other-cause-explained", "Elevation explained by another cause"),
    ("specialist-advised", "Hepatologist or specialist advised continuing"),
    ("newer-results-elsewhere", "Newer results available outside this record"),
    ("already-addressed", "Already addressed (dose withheld or order changed)"),
)
_OVERRIDE_REASONS: dict[DecisionKind, tuple[tuple[str, str], ...]] = {
    DecisionKind.CONTRAINDICATED: (
        ("condition-resolved", "Liver condition resolved or recorded in error"),
        ("specialist-advised", "Hepatologist or specialist advised continuing"),
        ("benefit-outweighs-risk", "Benefit judged to outweigh the risk"),
    ),
    DecisionKind.DISCONTINUE: _OVERRIDES_STOP,
    DecisionKind.WITHHOLD: _OVERRIDES_STOP,
    DecisionKind.REPEAT_TEST: (
        ("test-already-ordered", "Liver tests already ordered"),
        ("newer-results-elsewhere", "Newer results available outside this record"),
        ("patient-declined", "Patient declined the test"),
    ),
    DecisionKind.MONITOR_CLOSELY: (
        ("test-already-ordered", "Liver tests already ordered"),
        ("specialist-advised", "Hepatologist or specialist advised the monitoring plan"),
    ),
}


# --- formatting ------------------------------------------------------------------------------


def _quote(row: AssessedResult) -> str:
    """Return e.g. "ALT 236 U/L = 5.9× ULN on 2026-11-20"."""
    result = row.result
    value = (
        f"{result.analyte.value} {_bound(result.bound)}{_number(result.value)}{_unit(result.unit)}"
    )
    if row.uln is not None:
        value += f" = {_multiple(row)} ULN"
    return f"{value} on {_date(result.effective)}"


def _multiple(row: AssessedResult | None) -> str:
    """Return the ULN multiple rounded down to one decimal, so 2.96 never reads as 3.0."""
    if row is None or row.multiple is None:
        return "n/a"
    floored = math.floor(row.multiple * 10 + 1e-9) / 10
    prefix = "≥" if row.result.bound is Bound.AT_LEAST else ""
    return f"{prefix}{floored:.1f}×"


def _number(value: float) -> str:
    if value >= 100:
        text = f"{value:.0f}"
    elif value >= 1:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


_REPORTED = re.compile(
    r"^(?P<comparator>[<>]=?)?(?P<number>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*(?P<unit>.*)$"
)


def _as_sent(reported: str, canonical_unit: str) -> str:
    """Return the value as the lab sent it, rounded, when its unit was not the canonical one."""
    match = _REPORTED.match(reported.strip())
    if match is None or match["unit"] in ("", canonical_unit):
        return ""
    number = float(match["number"])
    return f"{match['comparator'] or ''}{float(f'{number:.4g}'):g} {match['unit']}"


def _unit(unit: str) -> str:
    """Return " U/L" for a unit, nothing for a UCUM annotation such as {INR} (unitless)."""
    return "" if unit.startswith("{") else f" {unit}"


def _bound(bound: Bound) -> str:
    return {Bound.EXACT: "", Bound.AT_LEAST: "≥", Bound.AT_MOST: "≤"}[bound]


def _date(moment: datetime | None) -> str:
    return moment.date().isoformat() if moment else "unknown date"


def _instant(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _names(analytes: Iterable[Analyte]) -> str:
    names = [analyte.value for analyte in analytes]
    if len(names) <= 1:
        return "".join(names) or "liver tests"
    return ", ".join(names[:-1]) + " and " + names[-1]


def _first_of(rows: Iterable[AssessedResult], analyte: Analyte) -> AssessedResult | None:
    return next((row for row in rows if row.result.analyte is analyte), None)


def _condition_name(condition: LiverCondition | None) -> str:
    if condition is None:
        return "liver condition"
    return (
        condition.name
        or condition.coding.display
        or f"{condition.kind.value} ({condition.coding.code})"
    )


def _unusable_name(unusable: UnusableResult | None) -> str:
    return unusable.analyte.value if unusable else "liver test"


def _order_name(order: MedicationOrder) -> str:
    return order.medication or "mipomersen"


# Characters that would open HTML (rendered raw by some clients), emphasis, links or table cells.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|~])")


def _md(text: str) -> str:
    """Escape text from the request for Markdown, so no client renders it as HTML or markup."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def _code(text: str) -> str:
    return text.replace("`", "'")
