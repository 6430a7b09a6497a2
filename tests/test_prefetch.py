"""Which prefetch keys need the FHIR server, and templates rendered as CDS Hooks 2.0.1 defines."""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.hooks.discovery import prefetch_templates
from cds_service.hooks.prefetch import KeyState, plan_key, render_template, same_origin
from cds_service.hooks.request import parse_hook_request
from tests.fhir_builders import bundle, hook_request, observation

OUTCOME = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout"}]}
PAGED = {
    **bundle(observation("ALT", 20, "2026-11-20")),
    "link": [{"relation": "next", "url": "https://ehr.example.org/fhir?page=2"}],
}


def request(prefetch: dict[str, Any] | None = None, **context: Any) -> Any:
    body = hook_request("patient-view", prefetch=prefetch if prefetch is not None else {})
    body["context"].update(context)
    return parse_hook_request(body, expected_hook="patient-view")


@pytest.mark.parametrize(
    ("sent", "state", "has_url"),
    [
        pytest.param({}, KeyState.MISSING, True, id="absent"),
        pytest.param({"liverLabs": None}, KeyState.NULL, False, id="null-means-no-data"),
        pytest.param({"liverLabs": OUTCOME}, KeyState.MISSING, True, id="operation-outcome"),
        pytest.param(
            {"liverLabs": bundle(OUTCOME)}, KeyState.MISSING, True, id="bundle-of-outcomes"
        ),
        pytest.param({"liverLabs": bundle()}, KeyState.COMPLETE, False, id="empty-search"),
        pytest.param({"liverLabs": PAGED}, KeyState.PARTIAL, True, id="first-page-with-next"),
    ],
)
def test_key_state(sent: dict[str, Any], state: KeyState, has_url: bool) -> None:
    plan = plan_key(request(sent), "liverLabs", prefetch_templates()["liverLabs"])
    assert plan.state is state
    assert (plan.url is not None) is has_url
    if state is KeyState.PARTIAL:
        assert plan.url == "https://ehr.example.org/fhir?page=2"
        assert len(plan.items) == 1


@pytest.mark.parametrize(
    ("template", "context", "rendered"),
    [
        pytest.param("Patient/{{context.patientId}}", {}, "Patient/p1", id="context-field"),
        pytest.param(
            "Encounter/{{ context.encounterId }}",
            {"encounterId": "e 9"},
            "Encounter/e%209",
            id="spaces-in-braces-and-quoting",
        ),
        pytest.param(
            "Practitioner/{{userPractitionerId}}", {}, "Practitioner/u1", id="user-practitioner"
        ),
    ],
)
def test_template_rendering(template: str, context: dict[str, Any], rendered: str) -> None:
    assert render_template(template, request(**context)) == rendered


@pytest.mark.parametrize(
    ("template", "message"),
    [
        pytest.param("X/{{context.draftOrders}}", "not a primitive", id="non-primitive-field"),
        pytest.param("X/{{context.a.b}}", "not a primitive", id="nested-path"),
        pytest.param("X/{{context.missing}}", "not a primitive", id="absent-field"),
        pytest.param("X/{{userPatientId}}", "needs a Patient user", id="wrong-user-type"),
        pytest.param("X/{{today()}}", "unknown prefetch token", id="3.0-fhirpath-token"),
    ],
)
def test_unresolvable_tokens_are_refused(template: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        render_template(template, request())


def test_every_discovery_template_renders_for_every_hook() -> None:
    for key, template in prefetch_templates().items():
        assert "{{" not in render_template(template, request()), key


@pytest.mark.parametrize(
    ("url", "base", "same"),
    [
        ("https://ehr.example.org/fhir/Observation?page=2", "https://ehr.example.org/fhir", True),
        ("https://EHR.example.org:443/x", "https://ehr.example.org/fhir", True),
        ("http://ehr.example.org/fhir", "https://ehr.example.org/fhir", False),
        ("https://ehr.example.org:8443/fhir", "https://ehr.example.org/fhir", False),
        ("https://evil.example.org/fhir", "https://ehr.example.org/fhir", False),
        ("https://ehr.example.org.evil.org/fhir", "https://ehr.example.org/fhir", False),
        ("https://ehr.example.org:bad/fhir", "https://ehr.example.org/fhir", False),
        ("/relative", "https://ehr.example.org/fhir", False),
    ],
    ids=[
        "same",
        "case-and-default-port",
        "other-scheme",
        "other-port",
        "other-host",
        "suffix-host",
        "malformed-port",
        "relative",
    ],
)
def test_same_origin(url: str, base: str, same: bool) -> None:
    assert same_origin(url, base) is same
