"""Monitor more closely when ALT/AST are above ULN, or have resolved after an elevation.

Implements project policy 8 (below 3× ULN but above ULN: continue, an informational
card recommends closer monitoring, the seed guide's weekly ALT/AST) and Kynamro PI §2.3 ("if
resumed after transaminases resolve to <3× ULN, monitor liver tests more frequently").

When every current ALT and AST is below 3× ULN
and an ALT or AST ≥3× ULN was taken within the resolved-elevation lookback (92 days) before the
latest ALT/AST
Then monitor closely: resolved after an elevation (the earlier result is the supporting
evidence). This reason wins when the next one also applies.

When every current ALT and AST is below 3× ULN and the deciding one is above ULN
Then monitor closely: above ULN.

Neither while a withhold lasts (policy 12: until a later ALT and a later AST are both below
3× ULN), nor on history (policy 13).

"Below 3× ULN" is certain here: a "≥ v" floor below 3× ULN never reaches this rule (`uln` makes
it an ambiguous, unusable result instead).
"""

from __future__ import annotations

from cds_service.rules.chart import Chart
from cds_service.rules.decision import Finding, Rule, rule
from cds_service.rules.transaminases import earlier_elevation, elevations
from cds_service.rules.uln import is_above_uln

ABOVE_ULN = rule(
    "policy-8-above-uln",
    "Project policy 8 (ALT or AST above ULN but below 3× ULN: continue, monitor more closely)",
    reason_code="transaminase-above-uln",
)
RESOLVED_AFTER_ELEVATION = rule(
    "label-2.3-resolved-monitor-closely",
    "Kynamro PI §2.3 dose modification table (after resolution to <3× ULN, monitor liver tests "
    "more frequently); project policy 8",
    reason_code="resolved-after-elevation",
)
RULES: tuple[Rule, ...] = (
    ABOVE_ULN,
    RESOLVED_AFTER_ELEVATION,
)


def findings(chart: Chart) -> list[Finding]:
    """Return the closer-monitoring finding for ALT/AST below 3× ULN, if one applies."""
    current = chart.transaminases
    if current is None or elevations(current, chart.config) or chart.is_withholding:
        return []
    deciding = current.deciding
    previous = earlier_elevation(current, chart.current_results, chart.config)
    if previous is not None:
        rule = RESOLVED_AFTER_ELEVATION
        return [
            rule.finding(
                deciding=deciding,
                supporting=(previous,),
            )
        ]
    if is_above_uln(deciding):
        rule = ABOVE_ULN
        return [
            rule.finding(
                deciding=deciding,
            )
        ]
    return []
