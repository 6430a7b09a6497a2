"""A timeline of ALT, AST and total bilirubin as multiples of ULN, drawn as an SVG.

Clinicians read a trend faster than a table: each result is a point at its date and its
multiple of ULN (the ULN as the rules take it, policy 4), with the 3× and 5× lines the label's
dose-modification table acts on and the result that decided the card ringed. No Flask here;
every text in the SVG is escaped, so data from a Bundle can never become markup.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from xml.sax.saxutils import escape, quoteattr

from cds_service.rules import Evaluation, RuleConfig
from cds_service.rules.uln import uln_for
from fhir_mappings import FhirItem, read_patient_record
from fhir_mappings.values import Analyte, LabResult, MedicationCodes, ResourceRef

PLOTTED = (Analyte.ALT, Analyte.AST, Analyte.TOTAL_BILIRUBIN)
_STYLE = {  # colour (distinguishable without red/green), marker shape
    Analyte.ALT: ("#1f5fbf", "circle"),
    Analyte.AST: ("#7a3db8", "square"),
    Analyte.TOTAL_BILIRUBIN: ("#b35900", "triangle"),
}
_WIDTH, _HEIGHT = 720, 280
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 44, 16, 56


@dataclass(frozen=True, slots=True)
class TimelinePoint:
    """One plotted result."""

    analyte: Analyte
    effective: datetime
    value: float
    unit: str
    uln: float
    multiple: float
    deciding: bool
    source: ResourceRef

    def to_json(self) -> dict[str, object]:
        """Return the point for the playground's table."""
        return {
            "analyte": self.analyte.value,
            "date": self.effective.date().isoformat(),
            "value": self.value,
            "unit": self.unit,
            "uln": self.uln,
            "multiple": round(self.multiple, 2),
            "deciding": self.deciding,
            "resource": f"{self.source.resource_type}/{self.source.id or '?'}",
        }


def timeline_points(
    items: Iterable[FhirItem],
    *,
    rules: RuleConfig,
    evaluation: Evaluation | None,
    medication_codes: MedicationCodes | None = None,
) -> list[TimelinePoint]:
    """Return every ALT, AST and total bilirubin result with a ULN, oldest first."""
    record = read_patient_record(items, medication_codes=medication_codes or MedicationCodes())
    finding = evaluation.decision if evaluation else None
    deciding = finding.deciding.result.source if finding and finding.deciding else None
    points = []
    for result in record.lab_results:
        point = _point(result, rules, deciding)
        if point is not None:
            points.append(point)
    return sorted(points, key=lambda point: (point.effective, point.analyte.value))


def _point(
    result: LabResult, rules: RuleConfig, deciding: ResourceRef | None
) -> TimelinePoint | None:
    if result.analyte not in PLOTTED:
        return None
    uln, _ = uln_for(result, rules)
    if uln is None:
        return None
    return TimelinePoint(
        analyte=result.analyte,
        effective=result.effective,
        value=result.value,
        unit=result.analyte.canonical_unit,
        uln=uln,
        multiple=result.value / uln,
        deciding=deciding is not None and result.source == deciding,
        source=result.source,
    )


def timeline_svg(
    points: Sequence[TimelinePoint], *, elevation: float = 3.0, severe: float = 5.0
) -> str:
    """Return the timeline as a standalone SVG document (an empty chart says so)."""
    top = max(severe + 1.0, *(math.ceil(point.multiple) + 0.5 for point in points), 0.0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_WIDTH} {_HEIGHT}" '
        'role="img" aria-labelledby="timeline-title timeline-desc" class="timeline">',
        '<title id="timeline-title">Liver tests as multiples of ULN</title>',
        f'<desc id="timeline-desc">{escape(_description(points))}</desc>',
        f'<rect x="0" y="0" width="{_WIDTH}" height="{_HEIGHT}" fill="#ffffff"/>',
    ]
    plot_width = _WIDTH - _LEFT - _RIGHT
    plot_height = _HEIGHT - _TOP - _BOTTOM

    def y_of(multiple: float) -> float:
        return _TOP + plot_height * (1 - min(multiple, top) / top)

    for multiple, colour, dash, label in (
        (1.0, "#8a8a8a", "2 3", "ULN"),
        (elevation, "#b37400", "6 4", f"{elevation:g}× ULN"),
        (severe, "#b00020", "6 4", f"{severe:g}× ULN"),
    ):
        y = y_of(multiple)
        parts.append(
            f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{_WIDTH - _RIGHT}" y2="{y:.1f}" '
            f'stroke="{colour}" stroke-dasharray="{dash}" stroke-width="1.5"/>'
            f'<text x="{_LEFT - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="{colour}">{escape(label)}</text>'
        )
    parts.append(
        f'<line x1="{_LEFT}" y1="{_TOP + plot_height}" x2="{_WIDTH - _RIGHT}" '
        f'y2="{_TOP + plot_height}" stroke="#333"/>'
    )
    if not points:
        parts.append(
            f'<text x="{_WIDTH / 2}" y="{_HEIGHT / 2}" text-anchor="middle" font-size="14" '
            'fill="#555">No ALT, AST or total bilirubin results to plot</text></svg>'
        )
        return "".join(parts)
    first = min(point.effective for point in points)
    last = max(point.effective for point in points)
    span = max((last - first).total_seconds(), 1.0)

    def x_of(moment: datetime) -> float:
        if first == last:
            return _LEFT + plot_width / 2
        return _LEFT + plot_width * (moment - first).total_seconds() / span

    for moment in _date_ticks(first, last):
        x = x_of(moment)
        parts.append(
            f'<text x="{x:.1f}" y="{_TOP + plot_height + 16}" text-anchor="middle" '
            f'font-size="11" fill="#333">{moment.date().isoformat()}</text>'
        )
    for index, analyte in enumerate(PLOTTED):
        colour, shape = _STYLE[analyte]
        series = [point for point in points if point.analyte is analyte]
        coordinates = [(x_of(point.effective), y_of(point.multiple)) for point in series]
        if len(coordinates) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coordinates)
            parts.append(
                f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.5"/>'
            )
        for point, (x, y) in zip(series, coordinates, strict=True):
            parts.append(_marker(point, x, y, colour, shape))
        legend_x = _LEFT + index * 150
        legend_y = _HEIGHT - 14
        parts.append(_legend_marker(legend_x, legend_y, colour, shape))
        parts.append(
            f'<text x="{legend_x + 10}" y="{legend_y + 4}" font-size="12" fill="#222">'
            f"{escape(analyte.value)}</text>"
        )
    parts.append(
        f'<circle cx="{_LEFT + 3 * 150}" cy="{_HEIGHT - 14}" r="7" fill="none" stroke="#000" '
        f'stroke-width="2"/><text x="{_LEFT + 3 * 150 + 12}" y="{_HEIGHT - 10}" font-size="12" '
        'fill="#222">deciding result</text></svg>'
    )
    return "".join(parts)


def _marker(point: TimelinePoint, x: float, y: float, colour: str, shape: str) -> str:
    label = (
        f"{point.analyte.value} {point.value:g} {point.unit} = {point.multiple:.1f}× ULN "
        f"on {point.effective.date().isoformat()}"
        + (" (deciding result)" if point.deciding else "")
    )
    attributes = f'class="point" data-analyte={quoteattr(point.analyte.value)}'
    if point.deciding:
        attributes += ' data-deciding="true"'
    ring = (
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="10" fill="none" stroke="#000" stroke-width="2"/>'
        if point.deciding
        else ""
    )
    return f"<g {attributes}><title>{escape(label)}</title>{ring}{_shape(x, y, colour, shape)}</g>"


def _legend_marker(x: float, y: float, colour: str, shape: str) -> str:
    return _shape(x, y, colour, shape)


def _shape(x: float, y: float, colour: str, shape: str) -> str:
    if shape == "square":
        return f'<rect x="{x - 4:.1f}" y="{y - 4:.1f}" width="8" height="8" fill="{colour}"/>'
    if shape == "triangle":
        return (
            f'<polygon points="{x:.1f},{y - 5:.1f} {x - 5:.1f},{y + 4:.1f} {x + 5:.1f},{y + 4:.1f}"'
            f' fill="{colour}"/>'
        )
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4.5" fill="{colour}"/>'


def _date_ticks(first: datetime, last: datetime, count: int = 5) -> list[datetime]:
    if first == last:
        return [first]
    step = (last - first) / (count - 1)
    return [first + step * index for index in range(count)]


def _description(points: Sequence[TimelinePoint]) -> str:
    if not points:
        return "No results."
    deciding = [point for point in points if point.deciding]
    text = f"{len(points)} results from {points[0].effective.date().isoformat()} to " + (
        f"{points[-1].effective.date().isoformat()}."
    )
    if deciding:
        point = deciding[0]
        text += (
            f" Deciding result: {point.analyte.value} {point.multiple:.1f}× ULN on "
            f"{point.effective.date().isoformat()}."
        )
    return text
