"""Check CDS Hooks JSON against the HL7 fhir-tools-ig logical models and their invariants.

The StructureDefinitions in tests/data/cds-hooks/ list every element a response or discovery
document may carry; the invariants (cds-resp-1..6, written in FHIRPath there) are re-stated here
in Python, one function each, so a failure names the invariant.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data" / "cds-hooks"
INDICATORS = {"info", "warning", "critical"}
SELECTION_BEHAVIORS = {"at-most-one", "any"}
ACTION_TYPES = {"create", "update", "delete"}


@cache
def _element_paths(name: str) -> frozenset[str]:
    definition = json.loads((DATA / f"structuredefinition-{name}.json").read_text())
    return frozenset(element["path"] for element in definition["differential"]["element"])


def _check_known_keys(value: Any, path: str, model: str, problems: list[str]) -> None:
    """Every key must be an element of the logical model; `extension` is always allowed."""
    if isinstance(value, list):
        for item in value:
            _check_known_keys(item, path, model, problems)
        return
    if not isinstance(value, dict):
        return
    for key, item in value.items():
        child = f"{path}.{key}"
        if key == "extension":
            continue
        if child not in _element_paths(model):
            problems.append(f"{child} is not an element of {model}")
            continue
        if key in ("resource", "topic") or child.endswith("overrideReasons"):
            continue  # FHIR resources and Codings: not part of the logical model's tree
        _check_known_keys(item, child, model, problems)


def _check_no_empty(value: Any, path: str, problems: list[str]) -> None:
    """CDS Hooks 2.0: optional fields without a value are omitted, never null, "", [] or {}."""
    if value is None or value == "" or value == [] or value == {}:
        problems.append(f"{path} is empty or null")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_no_empty(item, f"{path}.{key}", problems)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_no_empty(item, f"{path}[{index}]", problems)


def response_problems(body: Any) -> list[str]:
    """Return every way `body` breaks the CDSHooksResponse model; empty when conformant."""
    problems: list[str] = []
    if not isinstance(body, dict) or not isinstance(body.get("cards"), list):
        return ["response must be an object with a cards array"]
    _check_known_keys(body, "CDSHooksResponse", "CDSHooksResponse", problems)
    for index, card in enumerate(body["cards"]):
        where = f"cards[{index}]"
        _check_no_empty(card, where, problems)
        summary = card.get("summary")
        if not isinstance(summary, str) or len(summary) >= 140:
            problems.append(f"{where}.summary must be a string under 140 characters")
        if card.get("indicator") not in INDICATORS:
            problems.append(f"{where}.indicator must be one of {sorted(INDICATORS)}")
        if not isinstance(card.get("source"), dict) or not card["source"].get("label"):
            problems.append(f"{where}.source.label is required")
        suggestions = card.get("suggestions", [])
        if suggestions and card.get("selectionBehavior") not in SELECTION_BEHAVIORS:
            problems.append(f"cds-resp-6: {where} has suggestions but no valid selectionBehavior")
        if card.get("selectionBehavior") == "at-most-one":
            recommended = sum(1 for s in suggestions if s.get("isRecommended"))
            if recommended > 1:
                problems.append(f"cds-resp-1: {where} recommends {recommended} suggestions")
        for s_index, suggestion in enumerate(suggestions):
            if not suggestion.get("label"):
                problems.append(f"{where}.suggestions[{s_index}].label is required")
            for a_index, action in enumerate(suggestion.get("actions", [])):
                a_where = f"{where}.suggestions[{s_index}].actions[{a_index}]"
                if action.get("type") not in ACTION_TYPES:
                    problems.append(f"{a_where}.type must be one of {sorted(ACTION_TYPES)}")
                if not action.get("description"):
                    problems.append(f"cds-resp-5: {a_where} has no description")
                if action.get("type") == "delete" and (
                    not action.get("resourceId") or "resource" in action
                ):
                    problems.append(f"cds-resp-2: {a_where} delete needs resourceId, no resource")
        for r_index, reason in enumerate(card.get("overrideReasons", [])):
            if not reason.get("display"):
                problems.append(f"cds-resp-4: {where}.overrideReasons[{r_index}] has no display")
            if not reason.get("system") or not reason.get("code"):
                problems.append(f"{where}.overrideReasons[{r_index}] needs system and code")
        for l_index, link in enumerate(card.get("links", [])):
            if link.get("type") != "smart" and "appContext" in link:
                problems.append(f"cds-resp-3: {where}.links[{l_index}] appContext on non-smart")
    return problems


def discovery_problems(body: Any) -> list[str]:
    """Return every way `body` breaks the CDSHooksServices model."""
    problems: list[str] = []
    if not isinstance(body, dict) or not isinstance(body.get("services"), list):
        return ["discovery must be an object with a services array"]
    for index, service in enumerate(body["services"]):
        where = f"services[{index}]"
        _check_no_empty(service, where, problems)
        for key in ("hook", "id", "description"):
            if not isinstance(service.get(key), str) or not service[key]:
                problems.append(f"{where}.{key} is required")
        for key in service:
            if key == "prefetch":
                continue
            if f"CDSHooksServices.services.{key}" not in _element_paths("CDSHooksServices"):
                problems.append(f"{where}.{key} is not an element of CDSHooksServices")
        for key, template in service.get("prefetch", {}).items():
            if not isinstance(template, str):
                problems.append(f"{where}.prefetch.{key} must be a string template")
    return problems
