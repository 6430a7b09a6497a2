"""RuleConfig refuses values that would make the policy meaningless."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from cds_service.rules import DEFAULT_ULN, RuleConfig
from fhir_mappings.values import Analyte


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param({"elevation_multiple": 0}, "elevation multiples", id="3x multiple zero"),
        pytest.param({"elevation_multiple": 6.0}, "elevation multiples", id="3x multiple above 5x"),
        pytest.param({"bilirubin_multiple": 0}, "bilirubin multiple", id="bilirubin zero"),
        pytest.param(
            {"confirmation_window": timedelta(0)}, "confirmation_window", id="window zero"
        ),
        pytest.param(
            {"default_uln": {**DEFAULT_ULN, Analyte.ALT: 0.0}}, "default ULN for", id="ULN zero"
        ),
        pytest.param({"default_uln": {Analyte.ALT: 40.0}}, "default ULN missing", id="ULN missing"),
    ],
)
def test_invalid_configuration_is_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RuleConfig(**overrides)


def test_defaults_are_the_project_policy() -> None:
    config = RuleConfig()
    assert config.default_uln[Analyte.ALT] == 40.0
    assert config.confirmation_window == timedelta(days=31)  # policy 3, revised 2026-11-30
    assert config.current_window == timedelta(days=7)
