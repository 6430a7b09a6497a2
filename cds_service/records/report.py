"""Which cards help and which are noise: cards shown, accepted and overridden, per rule.

A card counts once, with the last thing a clinician did with it (by `outcomeTimestamp`):
accepted, overridden, or nothing (no feedback: ignored, or the EHR sends no feedback). The
override rate is overridden ÷ shown; ignored cards count as shown, never as overridden.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cds_service.records.storage.models import iso_instant
from cds_service.records.storage.repository import CardFeedback
from cds_service.rules import DecisionKind

NO_REASON = "(no reason)"
COMMENT_ONLY = "(comment only)"
_DECISION_ORDER = {kind.value: index for index, kind in enumerate(DecisionKind)}


@dataclass(slots=True)
class RuleRow:
    """The counts of one decision and rule (or of all of them: `decision` "all")."""

    decision: str
    rule: str
    shown: int = 0
    accepted: int = 0
    overridden: int = 0
    override_reasons: Counter[str] = field(default_factory=Counter)

    @property
    def no_feedback(self) -> int:
        """Return how many cards had no feedback at all."""
        return self.shown - self.accepted - self.overridden

    @property
    def override_rate(self) -> float:
        """Return overridden ÷ shown (0 when nothing was shown)."""
        return self.overridden / self.shown if self.shown else 0.0

    def add(self, outcome: str | None, reason: str | None) -> None:
        """Count one card with its final outcome (None: no feedback)."""
        self.shown += 1
        if outcome == "accepted":
            self.accepted += 1
        elif outcome == "overridden":
            self.overridden += 1
            self.override_reasons[reason or NO_REASON] += 1

    def to_json(self) -> dict[str, Any]:
        """Return the row as JSON data."""
        return {
            "decision": self.decision,
            "rule": self.rule,
            "shown": self.shown,
            "accepted": self.accepted,
            "overridden": self.overridden,
            "noFeedback": self.no_feedback,
            "overrideRate": round(self.override_rate, 4),
            "overrideReasons": dict(self.override_reasons.most_common()),
        }


@dataclass(frozen=True, slots=True)
class Report:
    """The report: one row per decision and rule, a total, and feedback on unknown cards."""

    since: datetime | None
    rows: tuple[RuleRow, ...]
    total: RuleRow
    feedback_on_unknown_cards: int

    def to_json(self) -> dict[str, Any]:
        """Return the report as JSON data."""
        return {
            "since": iso_instant(self.since) if self.since else None,
            "rows": [row.to_json() for row in self.rows],
            "total": self.total.to_json(),
            "feedbackOnUnknownCards": self.feedback_on_unknown_cards,
        }


def build_report(
    cards: Iterable[CardFeedback], *, since: datetime | None, feedback_on_unknown_cards: int
) -> Report:
    """Count cards per decision and rule; `cards` holds each card once per feedback item, in
    the order the clinicians acted (as `repository.issued_cards_with_feedback` yields them)."""
    final: dict[str, CardFeedback] = {}
    for card in cards:
        final[card.card_uuid] = card  # the last item about a card is its final outcome
    rows: dict[tuple[str, str], RuleRow] = {}
    total = RuleRow("all", "")
    for card in final.values():
        decision, rule = card.decision or "", card.rule or ""
        row = rows.setdefault((decision, rule), RuleRow(decision, rule))
        outcome = card.feedback.outcome if card.feedback else None
        reason = _reason(card)
        row.add(outcome, reason)
        total.add(outcome, reason)
    ordered = sorted(rows.values(), key=lambda r: (_DECISION_ORDER.get(r.decision, 99), r.rule))
    return Report(since, tuple(ordered), total, feedback_on_unknown_cards)


def _reason(card: CardFeedback) -> str | None:
    feedback = card.feedback
    if feedback is None or feedback.outcome != "overridden":
        return None
    if feedback.override_code:
        return feedback.override_code
    return COMMENT_ONLY if feedback.user_comment else NO_REASON


_HEADER = (
    "decision",
    "rule",
    "shown",
    "accepted",
    "overridden",
    "no feedback",
    "override rate",
    "override reasons",
)
_NUMERIC_COLUMNS = range(2, 7)


def render_text(report: Report) -> str:
    """Return the report as a table for a terminal."""
    table = [_HEADER, *(_cells(row) for row in (*report.rows, report.total))]
    widths = [max(len(cells[column]) for cells in table) for column in range(len(_HEADER))]

    def line(cells: tuple[str, ...]) -> str:
        padded = (
            cell.rjust(width) if column in _NUMERIC_COLUMNS else cell.ljust(width)
            for column, (cell, width) in enumerate(zip(cells, widths, strict=True))
        )
        return "  ".join(padded).rstrip()

    scope = f"since {iso_instant(report.since)}" if report.since else "since the first record"
    footer = f"Feedback on cards this server did not issue: {report.feedback_on_unknown_cards}"
    return "\n".join([f"Cards issued {scope}", "", *map(line, table), "", footer])


def _cells(row: RuleRow) -> tuple[str, ...]:
    reasons = ", ".join(f"{code} {count}" for code, count in row.override_reasons.most_common())
    return (
        row.decision,
        row.rule,
        str(row.shown),
        str(row.accepted),
        str(row.overridden),
        str(row.no_feedback),
        f"{row.override_rate:.0%}",
        reasons,
    )
