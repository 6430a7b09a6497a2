"""Pure clinical rules for mipomersen (Kynamro) liver safety.

Implements the Kynamro prescribing information (NDA 203568: boxed warning, §2.3 dose modification
table, §4 contraindications, W&P 5.1 monitoring) as decided in `docs/clinical-policy.md`
project policies 1-11. The rules take typed values (`fhir_mappings.values`), a `RuleConfig` and an
explicit `now`, and return an `Evaluation`; they never import Flask, HTTP or a database.
"""

from __future__ import annotations

from cds_service.rules.config import DEFAULT_ULN, Profile, RuleConfig
from cds_service.rules.decision import (
    AssessedResult,
    DecisionKind,
    Evaluation,
    Finding,
    FollowUpTest,
    Occasion,
    Reason,
)
from cds_service.rules.engine import evaluate
from cds_service.rules.relevance import reading_window

__all__ = [
    "AssessedResult",
    "DEFAULT_ULN",
    "DecisionKind",
    "Evaluation",
    "Finding",
    "FollowUpTest",
    "Occasion",
    "Profile",
    "Reason",
    "RuleConfig",
    "evaluate",
    "reading_window",
]
