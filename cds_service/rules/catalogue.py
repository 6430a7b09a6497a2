"""Every rule the service can fire: a stable id and the clinical source a card cites.

Ids never change once released (cards, audit records and golden files quote them). Sources cite the
Kynamro (mipomersen) prescribing information (PI, NDA 203568) sections and the project policies of
`docs/clinical-policy.md`, where each policy has a heading and every rule a row; "seed guide 003"
is the stricter guide behind the `conservative` profile (policy 1).
`tests/test_clinical_policy_doc.py` checks that each rule and each policy cited is in the document.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Rule:
    """A rule's stable id and its human-readable citation."""

    id: str
    source: str


CONTRAINDICATED_ACTIVE_LIVER_DISEASE = Rule(
    "label-4-contraindicated-active-liver-disease",
    "Kynamro PI §4 Contraindications (active liver disease, moderate or severe hepatic "
    "impairment); project policy 10",
)

DISCONTINUE_WITH_BILIRUBIN = Rule(
    "label-2.3-discontinue-bilirubin-2x-uln",
    "Kynamro PI §2.3 dose modification table (transaminase elevation with bilirubin ≥2× ULN); "
    "project policy 9",
)
DISCONTINUE_WITH_SYMPTOMS = Rule(
    "label-2.3-discontinue-liver-injury-symptoms",
    "Kynamro PI §2.3 dose modification table (transaminase elevation with clinical symptoms of "
    "liver injury); project policy 9",
)
DISCONTINUE_WITH_LIVER_DISEASE = Rule(
    "label-2.3-discontinue-active-liver-disease",
    "Kynamro PI §2.3 dose modification table (transaminase elevation with active liver disease); "
    "project policy 9",
)

CONTRAINDICATED_ON_THERAPY = Rule(
    "policy-10-contraindicated-on-therapy",
    "Kynamro PI §4 Contraindications (active liver disease, moderate or severe hepatic "
    "impairment) for a patient on an active course: reassess therapy; project policy 10",
)

WITHHOLD_SEVERE = Rule(
    "label-2.3-withhold-5x-uln",
    "Kynamro PI boxed warning and §2.3 dose modification table (ALT or AST ≥5× ULN: withhold, "
    "no confirmation step); project policy 2",
)
WITHHOLD_CONFIRMED = Rule(
    "policy-3-confirmed-elevation",
    "Kynamro PI §2.3 dose modification table (ALT or AST ≥3× ULN confirmed by a repeat "
    "measurement: withhold); project policy 3",
)
WITHHOLD_UNTIL_RESOLVED = Rule(
    "policy-12-withhold-until-resolved",
    "Kynamro PI §2.3 dose modification table (resume only after transaminases resolve to "
    "<3× ULN); project policy 12",
)
WITHHOLD_PENDING_REPEAT = Rule(
    "conservative-withhold-3x-uln",
    "Seed guide 003 (pause at ALT or AST ≥3× ULN, repeat within one week); project policy 1",
)
CONFIRM_ELEVATION = Rule(
    "label-2.3-confirm-3x-uln",
    "Kynamro PI §2.3 dose modification table (ALT or AST ≥3× and <5× ULN: confirm with a repeat "
    "measurement within one week); project policy 3",
)

BASELINE = Rule(
    "policy-7-baseline",
    "Kynamro PI W&P 5.1 (baseline ALT, AST, alkaline phosphatase and total bilirubin before the "
    "first dose); project policy 7",
)
BASELINE_ABNORMAL = Rule(
    "label-5.1-baseline-abnormal",
    "Kynamro PI W&P 5.1 (abnormal baseline liver tests: start only after work-up); "
    "project policies 7 and 14",
)
MONITORING_FIRST_YEAR = Rule(
    "policy-7-monitoring-first-year",
    "Kynamro PI W&P 5.1 (ALT and AST monthly during the first year); project policy 7",
)
MONITORING_AFTER_FIRST_YEAR = Rule(
    "policy-7-monitoring-after-first-year",
    "Kynamro PI W&P 5.1 (ALT and AST at least every 3 months after the first year); "
    "project policy 7",
)
MONITORING_CONSERVATIVE = Rule(
    "conservative-weekly-monitoring",
    "Seed guide 003 Protocol 1 (weekly ALT and AST in the first month and after an "
    "elevation); project policy 1",
)

ABOVE_ULN = Rule(
    "policy-8-above-uln",
    "Project policy 8 (ALT or AST above ULN but below 3× ULN: continue, monitor more closely)",
)
RESOLVED_AFTER_ELEVATION = Rule(
    "label-2.3-resolved-monitor-closely",
    "Kynamro PI §2.3 dose modification table (after resolution to <3× ULN, monitor liver tests "
    "more frequently); project policy 8",
)

RESULT_UNUSABLE = Rule(
    "data-quality-result-unusable",
    "Project policies 5, 11 and 15 (an unusable result, or one naming no patient, is named, never "
    "guessed, and never gives an all clear)",
)
RECORD_UNREADABLE = Rule(
    "data-quality-record-unreadable",
    "Project policies 9, 10, 11 and 15 (an unreadable Condition or MedicationRequest may hide a "
    "contraindication or the therapy start; a mipomersen order is read in part, never ignored)",
)

ALL_RULES: tuple[Rule, ...] = (
    CONTRAINDICATED_ACTIVE_LIVER_DISEASE,
    CONTRAINDICATED_ON_THERAPY,
    DISCONTINUE_WITH_BILIRUBIN,
    DISCONTINUE_WITH_SYMPTOMS,
    DISCONTINUE_WITH_LIVER_DISEASE,
    WITHHOLD_SEVERE,
    WITHHOLD_CONFIRMED,
    WITHHOLD_UNTIL_RESOLVED,
    WITHHOLD_PENDING_REPEAT,
    CONFIRM_ELEVATION,
    BASELINE,
    BASELINE_ABNORMAL,
    MONITORING_FIRST_YEAR,
    MONITORING_AFTER_FIRST_YEAR,
    MONITORING_CONSERVATIVE,
    ABOVE_ULN,
    RESOLVED_AFTER_ELEVATION,
    RESULT_UNUSABLE,
    RECORD_UNREADABLE,
)
