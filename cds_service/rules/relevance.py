"""Which liver results the rules can use at all, so the rest need not be read.

Kynamro PI §2.3 and policies 1, 3, 7, 8 and 9 look back a bounded time from the latest ALT or
AST result or from now. Every result within `RuleConfig.recent_lookback` can matter; older ones
up to `RuleConfig.elevation_lookback` matter only as an ALT or AST elevation (≥3× ULN) that a
later result may have resolved; beyond that only each analyte's latest result matters
(monitoring cadence, data quality, the card's table).

When a record is read for evaluation at `now`
Then only the results inside that window, and each analyte's latest, are read and validated.
A property test checks that every finding is the same with and without the window.
"""

from __future__ import annotations

from datetime import datetime

from fhir_mappings.values import TRANSAMINASES, LabResult, ReadingWindow

from .config import RuleConfig
from .decision import AssessedResult
from .transaminases import is_elevation
from .uln import assess_result


def reading_window(config: RuleConfig, now: datetime) -> ReadingWindow:
    """Return the window of liver results the rules can use when evaluating at `now`."""

    def is_older_elevation(result: LabResult) -> bool:
        if result.analyte not in TRANSAMINASES:
            return False
        assessed = assess_result(result, config)
        return isinstance(assessed, AssessedResult) and is_elevation(assessed, config)

    return ReadingWindow(
        now=now,
        recent=config.recent_lookback,
        lookback=config.elevation_lookback,
        anchors=TRANSAMINASES,
        keep_older=is_older_elevation,
    )
