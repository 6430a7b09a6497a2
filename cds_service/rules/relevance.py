"""Which liver results the rules can use at all, so the rest need not be read.

Kynamro PI §2.3 and policies 1, 3, 7, 8 and 9 look back a bounded time from the latest ALT or
AST result or from now. Every result within `RuleConfig.recent_lookback` can matter. An older
ALT or AST result can matter at any age: policy 12 keeps a withhold until a later ALT and a
later AST are below 3× ULN, however long ago it began, so every transaminase result is read.
Older results of the other analytes matter only as that analyte's latest result (monitoring
cadence, data quality, the card's table).

When a record is read for evaluation at `now`
Then only the results inside that window, and each analyte's latest, are read and validated.
A property test checks that every finding is the same with and without the window.
"""

from __future__ import annotations

from datetime import datetime

from cds_service.rules.config import RuleConfig
from fhir_mappings.values import TRANSAMINASES, LabResult, ReadingWindow


def reading_window(config: RuleConfig, now: datetime) -> ReadingWindow:
    """Return the window of liver results the rules can use when evaluating at `now`."""

    def is_transaminase(result: LabResult) -> bool:
        return result.analyte in TRANSAMINASES

    return ReadingWindow(
        now=now,
        recent=config.recent_lookback,
        lookback=None,
        anchors=TRANSAMINASES,
        keep_older=is_transaminase,
    )
