"""Policy 8: above ULN below 3×, and resolved to <3× ULN after an elevation (PI §2.3)."""

from __future__ import annotations

import pytest

from fhir_mappings.values import LabResult

from .builders import alt, ast, order, reasons, run

ON_THERAPY = order(200)

ABOVE_ULN = "monitor-closely/transaminase-above-uln"
RESOLVED = "monitor-closely/resolved-after-elevation"


@pytest.mark.parametrize(
    ("labs", "expected"),
    [
        pytest.param([alt(40), ast(40)], [], id="ALT and AST exactly at ULN: no card"),
        pytest.param([alt(41), ast(22)], [ABOVE_ULN], id="ALT just above ULN"),
        pytest.param([alt(22), ast(119.9)], [ABOVE_ULN], id="AST just below 3x"),
        pytest.param([alt(50, uln=45), ast(22)], [ABOVE_ULN], id="above its own range high"),
        pytest.param([alt(44, uln=45), ast(22)], [], id="above default, below own range high"),
        pytest.param(
            [alt(30), ast(22), alt(130, 30)], [RESOLVED], id="resolved to normal after ALT 3x"
        ),
        pytest.param(
            [alt(60), ast(22), ast(130, 30)],
            [RESOLVED],
            id="resolved above ULN: resolved preferred",
        ),
        pytest.param(
            [alt(30), ast(22), alt(130, 92)], [RESOLVED], id="elevation exactly 92 days earlier"
        ),
        pytest.param(
            [alt(30), ast(22), alt(130, 92, minutes_ago=1)],
            [],
            id="elevation 92 days + 1 minute earlier: routine",
        ),
        pytest.param(
            [alt(60, 2), ast(130, 1), ast(30)],
            [RESOLVED],
            id="AST 3x after the deciding ALT, then normal: resolved",
        ),
    ],
)
def test_closer_monitoring(labs: list[LabResult], expected: list[str]) -> None:
    assert reasons(run(ON_THERAPY, *labs)) == expected


def test_resolved_finding_names_the_earlier_elevation() -> None:
    earlier = alt(130, 30)
    latest = alt(60)
    finding = run(ON_THERAPY, latest, ast(22), alt(125, 33), earlier).findings[0]
    assert finding.rule == "label-2.3-resolved-monitor-closely"
    assert finding.deciding is not None and finding.deciding.result == latest
    assert [s.result for s in finding.supporting] == [earlier]
