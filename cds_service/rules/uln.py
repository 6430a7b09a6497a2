"""Set each liver test result against its upper limit of normal (ULN).

Implements project policy 4 (where the ULN comes from) and policy 2 ("≥" at every
boundary; Kynamro PI boxed warning and §2.3).

When a result carries a positive `reference_high`
Then that is its ULN; otherwise the configured default ULN, flagged `uln_is_default` so the card
can say so; analytes without a default (INR, GGT) get no ULN.

When a value is censored (`Bound.AT_MOST`, `Bound.AT_LEAST`)
Then it is used only where the bound settles the question the rules ask of that analyte:
"≤ v" with v at or below the ULN is normal; "≤ v" above the ULN leaves the level unknown.
"≥ v" is a floor, used when the floor already reaches the analyte's action threshold (ALT/AST 3×,
total bilirubin 2×, any other analyte with a ULN: above 1×); below it nobody knows whether the
true value crosses the threshold. An unknown level becomes an `UnusableResult` (reason
`AMBIGUOUS`) that the data-quality rules name on a card: never a silent normal. (The brief only
spells this out for "≤"; the floor case is the same question, answered the safer way.)

Edge cases: a `reference_high` that is zero, negative or not finite is treated as absent (the
default ULN applies, flagged); a value that is not finite is unusable (`INVALID`).

Multiples are compared in exact decimal arithmetic (`decimal.Decimal`, 60 digits: every product
here is exact, and a quotient is exact enough that no two different multiples compare equal):
each value is read as the decimal it was written as (`fhir_mappings.decimals.exact_decimal`: its
literal, or the shortest decimal that round-trips), so 120 U/L against 40 U/L is exactly 3× and
0.36 against 0.12 exactly 3× as well. A relative tolerance of 1e-9 lets unit-conversion noise
(359.99999999999994 against 3 × 120) count as reaching a threshold: at a boundary the safer
reading wins.

Only a comparison near its boundary needs that arithmetic. A float is within a relative 2⁻⁵³ of
the decimal it was written as (the literal's nearest double, or the double whose shortest
decimal it is), and a product of two floats within another 2⁻⁵³ of its exact value; so a value
below 0.999999 or above 1.000001 times the threshold, compared in floats, lies on the same side
of the exact threshold, and the decimals are worked out only between those bounds
(`_clearly_below`, `_clearly_above`). tests/rules/test_uln.py checks both ways agree.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from decimal import Context, Decimal

from cds_service.rules.config import RuleConfig
from cds_service.rules.decision import AssessedResult
from cds_service.rules.ordering import results_newest_first
from fhir_mappings.decimals import exact_decimal
from fhir_mappings.values import (
    TRANSAMINASES,
    Analyte,
    Bound,
    LabResult,
    UnusableReason,
    UnusableResult,
)

_EXACT = Context(prec=60)
_ALMOST_ONE = Decimal(1) - Decimal("1e-9")  # 1 minus the relative tolerance


def exact(number: float) -> Decimal:
    """Return the number as the exact decimal it was written as."""
    return exact_decimal(number)


def uln_for(result: LabResult, config: RuleConfig) -> tuple[float | None, bool]:
    """Return the result's ULN and whether it is the configured default (policy 4)."""
    high = result.reference_high
    if high is not None and math.isfinite(high) and high > 0:
        return high, False
    default = config.default_uln.get(result.analyte)
    if default is None:
        return None, False
    return default, True


def exact_multiple(assessed: AssessedResult) -> Decimal | None:
    """Return the value as a multiple of its ULN (to 60 digits), or None without a ULN."""
    if assessed.uln is None:
        return None
    return _EXACT.divide(exact(assessed.result.value), exact(assessed.uln))


def reaches_multiple(assessed: AssessedResult, multiple: float) -> bool:
    """Return True when the value is at least `multiple` times its ULN ("≥", policy 2)."""
    uln = assessed.uln
    if uln is None:
        return False
    value, threshold = assessed.result.value, multiple * uln
    if _clearly_below(value, threshold):
        return False
    if _clearly_above(value, threshold):
        return True
    exact_threshold = _EXACT.multiply(exact(multiple), exact(uln))
    return exact(value) >= _EXACT.multiply(exact_threshold, _ALMOST_ONE)


def is_above_uln(assessed: AssessedResult) -> bool:
    """Return True when the value is strictly above its ULN (a value at the ULN is normal)."""
    uln = assessed.uln
    if uln is None:
        return False
    value = assessed.result.value
    if _clearly_below(value, uln):
        return False
    if _clearly_above(value, uln):
        return True
    return exact(value) > exact(uln)


# Far wider than the floats' error (a few 2⁻⁵³) and than the 1e-9 tolerance, far narrower than
# any difference a clinician would see: a comparison within them is worked out in decimals.
_BELOW = 0.999999
_ABOVE = 1.000001


def _clearly_below(value: float, threshold: float) -> bool:
    """Return True when `value` is surely below a positive, finite `threshold` (floats)."""
    return 0.0 < threshold < math.inf and value < threshold * _BELOW


def _clearly_above(value: float, threshold: float) -> bool:
    """Return True when `value` is surely above a positive, finite `threshold` (floats)."""
    return 0.0 < threshold < math.inf and math.inf > value > threshold * _ABOVE


def action_multiple(analyte: Analyte, config: RuleConfig) -> float | None:
    """Return the multiple of ULN the rules act on for this analyte, None for "above ULN"."""
    if analyte in TRANSAMINASES:
        return config.elevation_multiple
    if analyte is Analyte.TOTAL_BILIRUBIN:
        return config.bilirubin_multiple
    return None


def is_settled_floor(assessed: AssessedResult, config: RuleConfig) -> bool:
    """Return True when a "≥ v" floor already reaches the analyte's action threshold."""
    multiple = action_multiple(assessed.result.analyte, config)
    if multiple is None:
        return is_above_uln(assessed)
    return reaches_multiple(assessed, multiple)


def assess_result(result: LabResult, config: RuleConfig) -> AssessedResult | UnusableResult:
    """Return the result set against its ULN, or why its level cannot be known."""
    if not math.isfinite(result.value):
        return _unusable(result, UnusableReason.INVALID, "the value is not a finite number")
    uln, uln_is_default = uln_for(result, config)
    assessed = AssessedResult(result=result, uln=uln, uln_is_default=uln_is_default)
    if uln is None or result.bound is Bound.EXACT:
        return assessed
    reported = f"{result.value:g} {result.unit}"  # canonical unit, like the ULN
    limit = f"{uln:g} {result.unit}"
    if result.bound is Bound.AT_MOST:
        if not is_above_uln(assessed):
            return assessed
        detail = f"reported as at most {reported}, above the ULN of {limit}: the level is unknown"
        return _unusable(result, UnusableReason.AMBIGUOUS, detail)
    if is_settled_floor(assessed, config):
        return assessed
    multiple = action_multiple(result.analyte, config)
    threshold = "the ULN" if multiple is None else f"{multiple:g}× ULN"
    detail = (
        f"reported as at least {reported} with a ULN of {limit}: whether it reaches "
        f"{threshold} is unknown"
    )
    return _unusable(result, UnusableReason.AMBIGUOUS, detail)


def assess_results(
    results: Iterable[LabResult], config: RuleConfig
) -> tuple[tuple[AssessedResult, ...], tuple[UnusableResult, ...]]:
    """Return the usable results newest first, and those whose level is unknown."""
    assessed: list[AssessedResult] = []
    unusable: list[UnusableResult] = []
    for result in results:
        outcome = assess_result(result, config)
        if isinstance(outcome, AssessedResult):
            assessed.append(outcome)
        else:
            unusable.append(outcome)
    return results_newest_first(assessed), tuple(unusable)


def _unusable(result: LabResult, reason: UnusableReason, detail: str) -> UnusableResult:
    return UnusableResult(
        analyte=result.analyte,
        loinc=result.loinc,
        reason=reason,
        detail=detail,
        source=result.source,
        effective=result.effective,
    )
