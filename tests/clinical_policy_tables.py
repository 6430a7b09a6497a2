"""Write the code and settings tables of docs/clinical-policy.md from the data the service uses.

The document is prose written by hand, with blocks between `<!-- generated: NAME -->` and
`<!-- end generated: NAME -->` that this module fills from the files and constants the service
reads: the LOINC ConceptMap, the condition code lists, medication identity, the follow-up order
codes, the override reasons and the rule settings (`RuleConfig` and their `MIPOMERSEN_CDS_*`
variables). `tests/test_clinical_policy_doc.py` fails when the document differs from what this
module renders; after changing a data file or a setting, run

    .venv/bin/python -m tests.clinical_policy_tables

and commit the document. A new rule setting needs a line in `SETTING_SOURCES` first.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any

from cds_service.hooks import cards
from cds_service.rules import DecisionKind, FollowUpTest
from cds_service.settings import ULN_SETTINGS, Settings
from fhir_mappings import _loinc, _medications, _units
from fhir_mappings.values import Analyte

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "clinical-policy.md"
DATA = ROOT / "fhir_mappings" / "data"
LOINC_MAP = DATA / "liver-loinc-conceptmap.json"
CONDITION_CODES = DATA / "liver-condition-codes.json"
ANALYTES = DATA / "liver-analyte-codesystem.json"

_BLOCK = re.compile(
    r"(?P<open><!-- generated: (?P<name>[a-z-]+) -->\n)(?P<body>.*?)"
    r"(?P<close><!-- end generated: (?P=name) -->)",
    re.S,
)
_POLICY_HEADING = re.compile(r"^## Policy (\d+): (.+)$", re.M)
_LOINC_COMMENT = re.compile(
    r"^(?P<status>[VSU]) \(REFERENCE\.md §3\): (?P<source>.+)\. LOINC unit (?P<unit>\S+)\.$"
)

SYSTEM_NAMES: Mapping[str, str] = {
    "http://loinc.org": "LOINC",
    "http://snomed.info/sct": "SNOMED CT",
    "http://hl7.org/fhir/sid/icd-10-cm": "ICD-10-CM",
}

# The policy (or label section) each rule setting comes from; the meaning is the setting's own
# description in `cds_service.settings`. tests/test_settings.py proves that these settings
# reach every field of RuleConfig, so a new threshold cannot go undocumented.
SETTING_SOURCES: Mapping[str, Sequence[int | str]] = {
    "profile": (1,),
    "elevation_multiple": (2,),
    "severe_elevation_multiple": (2,),
    "bilirubin_multiple": (2, 9),
    "confirmation_window_days": (3,),
    "current_window_days": (2,),
    "discontinue_window_days": (9,),
    "baseline_window_days": (7, 13),
    "first_year_days": (7,),
    "first_year_interval_days": (7,),
    "maintenance_interval_days": (7,),
    "repeat_within_days": ("PI §2.3", 3),
    "conservative_interval_days": (1,),
    "conservative_first_month_days": (1,),
    "conservative_after_elevation_days": (1,),
    "resolved_elevation_lookback_days": (8,),
    **dict.fromkeys(ULN_SETTINGS.values(), (4,)),
}

# The follow-up order codes are not in the ConceptMap (they name orders, not results).
ORDER_CODE_STATUS: Mapping[FollowUpTest, tuple[str, str]] = {
    FollowUpTest.HEPATIC_FUNCTION_PANEL: ("V", "several repositories, incl. an FSH ServiceRequest"),
    FollowUpTest.INR: ("V", "several repositories"),
}


class DocumentError(ValueError):
    """The document or a data file is not in the shape this module renders."""


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def github_anchor(heading: str) -> str:
    """Return the anchor GitHub gives a Markdown heading (lower case, punctuation dropped)."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def policy_anchors(document: str) -> dict[int, str]:
    """Return the anchor of each `## Policy N: ...` heading, by N."""
    return {
        int(number): github_anchor(f"Policy {number}: {title}")
        for number, title in _POLICY_HEADING.findall(document)
    }


def _policy_links(sources: Sequence[int | str], anchors: Mapping[int, str]) -> str:
    parts: list[str] = []
    for source in sources:
        if isinstance(source, str):
            parts.append(source)
        elif source in anchors:
            parts.append(f"[policy {source}](#{anchors[source]})")
        else:
            raise DocumentError(f"no heading '## Policy {source}: ...' to link to")
    return ", ".join(parts)


def loinc_table(anchors: Mapping[int, str]) -> str:
    """Return the LOINC result codes the service maps, from the ConceptMap."""
    concept_map = _load(LOINC_MAP)
    analyte_names = {c["code"]: c["display"] for c in _load(ANALYTES)["concept"]}
    rows: list[tuple[str, ...]] = []
    for group in concept_map["group"]:
        for element in group["element"]:
            (target,) = element["target"]
            comment = _LOINC_COMMENT.match(target["comment"])
            if comment is None:
                raise DocumentError(f"LOINC {element['code']}: comment not in the expected form")
            rows.append(
                (
                    analyte_names[target["code"]],
                    f"`{element['code']}`",
                    element["display"],
                    f"`{comment['unit']}`",
                    comment["status"],
                    comment["source"],
                )
            )
    systems = ", ".join(f"`{system}`" for system in sorted(_loinc.LOINC_SYSTEMS))
    return (
        f"{len(rows)} codes, read under the code systems {systems} "
        f"(ConceptMap `{concept_map['url']}` version {concept_map['version']}).\n\n"
        + _table(("Analyte", "LOINC", "Long common name", "LOINC unit", "Status", "Source"), rows)
    )


def _factor(factor: _units.UnitFactor, canonical: str) -> str:
    if factor.multiply != 1:
        return f"× {factor.multiply:g}"
    if factor.divide != 1:
        return f"÷ {factor.divide:g}"
    return f"= {canonical}" if canonical != "{INR}" else "unitless"


def units_table(anchors: Mapping[int, str]) -> str:
    """Return the units accepted per analyte and how each converts to the canonical unit."""
    rows: list[tuple[str, ...]] = []
    seen: dict[int, list[str]] = {}
    tables: dict[int, _units._UnitTable] = {}
    for analyte, table in _units._TABLES.items():
        seen.setdefault(id(table), []).append(analyte.value)
        tables[id(table)] = table
    for key, analytes in seen.items():
        table = tables[key]
        canonical = Analyte(analytes[0]).canonical_unit
        by_factor: dict[str, list[str]] = {}
        for code, factor in table.ucum.items():
            by_factor.setdefault(_factor(factor, canonical), []).append(f"`{code}`")
        for text, factor in table.text.items():
            spelling = f'"{text}"'
            by_factor.setdefault(_factor(factor, canonical), []).append(spelling)
        conversions = "; ".join(f"{' '.join(codes)} {how}" for how, codes in by_factor.items())
        if table.unitless:
            conversions += "; no unit at all is accepted"
        rows.append((", ".join(analytes), f"`{canonical}`", conversions))
    return (
        "UCUM codes (in backticks) are compared exactly; unit texts (in quotes) ignoring case.\n\n"
        + _table(("Analytes", "Canonical unit", "Accepted, and the conversion"), rows)
    )


def order_codes_table(anchors: Mapping[int, str]) -> str:
    """Return the LOINC codes of the tests a card can order."""
    rows = []
    for test in FollowUpTest:
        status, source = ORDER_CODE_STATUS[test]
        rows.append((f"`{test.value}`", cards._FOLLOW_UP_NAMES[test], status, source))
    return _table(("LOINC", "Ordered as", "Status", "Source"), rows)


def _condition_rows(entries: Iterable[Mapping[str, str]]) -> list[tuple[str, ...]]:
    return [
        (
            SYSTEM_NAMES[entry["system"]],
            f"`{entry['code']}`",
            entry["display"],
            entry["status"],
            entry["source"],
        )
        for entry in entries
    ]


def _prefix_rows(entries: Iterable[Mapping[str, str]], kind: str) -> list[tuple[str, ...]]:
    grouped: dict[tuple[str, str, str, str], list[str]] = {}
    for entry in entries:
        if entry["kind"] == kind:
            key = (entry["system"], entry["display"], entry["status"], entry["source"])
            grouped.setdefault(key, []).append(entry["prefix"])
    return [
        (
            SYSTEM_NAMES[system],
            ", ".join(f"`{prefix}*`" for prefix in prefixes),
            display,
            status,
            source,
        )
        for (system, display, status, source), prefixes in grouped.items()
    ]


def condition_tables(anchors: Mapping[int, str]) -> str:
    """Return the condition code lists, one table per kind, then the codes left out."""
    data = _load(CONDITION_CODES)
    header = ("System", "Code", "Display", "Status", "Source")
    parts: list[str] = []
    for kind in data["kinds"]:
        rows = _condition_rows(entry for entry in data["codes"] if entry["kind"] == kind)
        rows += _prefix_rows(data["prefixes"], kind)
        parts.append(f"**{kind.capitalize()}** ({len(rows)} rows)\n\n" + _table(header, rows))
    left_out = [
        (
            SYSTEM_NAMES[entry["system"]],
            f"`{entry['code']}`",
            entry["display"],
            entry["status"],
            entry["reason"],
        )
        for entry in data["not_listed"]
    ]
    parts.append(
        "**Deliberately not listed** (never read as liver disease or a symptom)\n\n"
        + _table(("System", "Code", "Display", "Status", "Why not"), left_out)
    )
    return "\n\n".join(parts)


def medication_table(anchors: Mapping[int, str]) -> str:
    """Return what makes a MedicationRequest mipomersen (policy 6)."""
    systems = " or ".join(f"`{system}`" for system in sorted(_medications.ATC_SYSTEMS))
    names = " or ".join(f'"{name}"' for name in _medications._NAMES)
    rows = [
        ("ATC code", f"`{_medications.ATC_MIPOMERSEN}` under {systems}", "V"),
        (
            "Configured codes",
            f"`{Settings.variable('medication_codes')}` (`system|code,...`)",
            "deployer's",
        ),
        ("Name", f"{names}, any case, in a coding display, a text or a reference display", "V"),
        ("RxNorm, NDC, UNII, SNOMED CT", "none built in: none could be verified", "U"),
    ]
    return _table(("Matched by", "Value", "Status"), rows)


def override_reasons_table(anchors: Mapping[int, str]) -> str:
    """Return the override reasons each decision offers, from the card module."""
    rows = [
        (kind.value, f"`{code}`", display)
        for kind in DecisionKind
        for code, display in cards._OVERRIDE_REASONS.get(kind, ())
    ]
    return f"System `{cards.OVERRIDE_REASON_SYSTEM}`.\n\n" + _table(
        ("Decision", "Code", "Display"), rows
    )


def settings_table(anchors: Mapping[int, str]) -> str:
    """Return every rule setting: variable, default, meaning and source."""
    defaults = Settings()
    units = {c["code"]: c["property"][0]["valueString"] for c in _load(ANALYTES)["concept"]}
    uln_units = {name: units[analyte.value] for analyte, name in ULN_SETTINGS.items()}
    rows: list[tuple[str, ...]] = []
    for name, sources in SETTING_SOURCES.items():
        value = getattr(defaults, name)
        if name in uln_units:
            shown = f"{value:g} {uln_units[name]}"
        elif isinstance(value, StrEnum):
            shown = f"`{value.value}`"
        elif name.endswith("_days"):
            shown = f"{value:g} days"
        else:
            shown = f"{value:g}×"
        meaning = Settings.model_fields[name].description or ""
        rows.append(
            (f"`{Settings.variable(name)}`", shown, meaning, _policy_links(sources, anchors))
        )
    return _table(("Variable", "Default", "Meaning", "Source"), rows)


GENERATED: Mapping[str, Callable[[Mapping[int, str]], str]] = {
    "loinc-codes": loinc_table,
    "order-codes": order_codes_table,
    "units": units_table,
    "condition-codes": condition_tables,
    "medication-identity": medication_table,
    "override-reasons": override_reasons_table,
    "settings": settings_table,
}


def render(document: str) -> str:
    """Return the document with every generated block rendered afresh from the data."""
    anchors = policy_anchors(document)
    found: set[str] = set()

    def fill(match: re.Match[str]) -> str:
        name = match["name"]
        if name not in GENERATED:
            raise DocumentError(f"unknown generated block {name!r}")
        found.add(name)
        return f"{match['open']}{GENERATED[name](anchors)}\n{match['close']}"

    rendered = _BLOCK.sub(fill, document)
    missing = sorted(set(GENERATED) - found)
    if missing:
        raise DocumentError(f"generated blocks missing from the document: {', '.join(missing)}")
    return rendered


def main() -> int:
    """Rewrite docs/clinical-policy.md's generated blocks; say whether anything changed."""
    current = DOC.read_text(encoding="utf-8")
    rendered = render(current)
    changed = rendered != current
    if changed:
        DOC.write_text(rendered, encoding="utf-8")
    sys.stdout.write(f"{DOC.relative_to(ROOT)}: {'updated' if changed else 'current'}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
