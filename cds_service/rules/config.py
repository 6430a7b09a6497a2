"""The rule configuration: every threshold, window and default ULN in one typed place.

Values and their sources are the project policies 1-15 (docs/clinical-policy.md) and the Kynamro
PI §2.3 table.
Deployers override them through `MIPOMERSEN_CDS_*` environment variables (see
`cds_service.settings`, which builds this class); the rules never read the environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from types import MappingProxyType

from fhir_mappings.values import Analyte


class Profile(StrEnum):
    """Rule profile (policy 1): `label` follows the FDA PI, `conservative` the stricter seed."""

    LABEL = "label"
    CONSERVATIVE = "conservative"


# Policy 4: defaults used only when an Observation carries no referenceRange.high.
# ALT/AST 40 U/L: upper end of the PI §2.3 footnote "ULN of approximately 30-40 IU/L".
# Bilirubin and ALP: REFERENCE §4 (status S, common laboratory ranges).
DEFAULT_ULN: Mapping[Analyte, float] = MappingProxyType(
    {
        Analyte.ALT: 40.0,
        Analyte.AST: 40.0,
        Analyte.TOTAL_BILIRUBIN: 1.2,
        Analyte.DIRECT_BILIRUBIN: 0.3,
        Analyte.ALP: 120.0,
    }
)


@dataclass(frozen=True, slots=True)
class RuleConfig:
    """Thresholds and windows the rules apply; defaults are the binding project policy."""

    profile: Profile = Profile.LABEL
    # Policy 2 (PI boxed warning, §2.3): ">=" at every boundary.
    elevation_multiple: float = 3.0
    severe_elevation_multiple: float = 5.0
    bilirubin_multiple: float = 2.0
    # Policy 3 (revised 2026-11-30): a confirming ALT/AST result at most this long before the
    # latest one; the label's "repeat within one week" says when to repeat, not when a repeat
    # stops counting (was 7 days).
    confirmation_window: timedelta = timedelta(days=31)
    # PI §2.3 "within one week": the other transaminase taken this close before the latest
    # ALT/AST result still describes the current level.
    current_window: timedelta = timedelta(days=7)
    # Policy 9: bilirubin or a liver-injury symptom this close to the transaminase rise.
    discontinue_window: timedelta = timedelta(days=14)
    # Policy 7: baseline results this recent count; cadence in and after the first year.
    baseline_window: timedelta = timedelta(days=30)
    first_year: timedelta = timedelta(days=365)
    first_year_interval: timedelta = timedelta(days=31)
    maintenance_interval: timedelta = timedelta(days=92)
    # PI §2.3: repeat within one week; also the due date of follow-up tests.
    repeat_within: timedelta = timedelta(days=7)
    # Policy 1 (conservative): weekly ALT/AST in the first month and after any elevation.
    conservative_interval: timedelta = timedelta(days=7)
    conservative_first_month: timedelta = timedelta(days=31)
    conservative_after_elevation: timedelta = timedelta(days=31)
    # Policy 8 / PI §2.3 "monitor more frequently" after resolution gives no duration; this
    # project uses one maintenance interval after the last >=3x result.
    resolved_elevation_lookback: timedelta = timedelta(days=92)
    default_uln: Mapping[Analyte, float] = field(default_factory=lambda: DEFAULT_ULN)

    @property
    def recent_lookback(self) -> timedelta:
        """Return how far back a rule looks at any result, from the latest ALT/AST or from now.

        Windows over every result: confirmation (policy 3), discontinuation (policy 9), baseline
        (policy 7) and follow-up tests (PI §2.3). Older results matter only as an ALT or AST
        (policy 12) or as an analyte's latest result.
        """
        return max(
            self.confirmation_window,
            self.current_window,
            self.discontinue_window,
            self.baseline_window,
            self.repeat_within,
        )

    def __post_init__(self) -> None:
        if not 0 < self.elevation_multiple <= self.severe_elevation_multiple:
            raise ValueError("elevation multiples must satisfy 0 < elevation <= severe elevation")
        if self.bilirubin_multiple <= 0:
            raise ValueError("bilirubin multiple must be positive")
        for name in (
            "confirmation_window",
            "current_window",
            "discontinue_window",
            "baseline_window",
            "first_year",
            "first_year_interval",
            "maintenance_interval",
            "repeat_within",
            "conservative_interval",
            "conservative_first_month",
            "conservative_after_elevation",
            "resolved_elevation_lookback",
        ):
            if getattr(self, name) <= timedelta(0):
                raise ValueError(f"{name} must be a positive duration")
        for analyte, uln in self.default_uln.items():
            if not uln > 0:
                raise ValueError(f"default ULN for {analyte} must be positive")
        missing = set(DEFAULT_ULN) - set(self.default_uln)
        if missing:
            names = ", ".join(sorted(missing))
            raise ValueError(f"default ULN missing for {names}")
