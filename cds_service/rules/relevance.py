"""Which liver results the rules can use at all, so the rest need not be read.

Kynamro PI §2.3 and policies 1, 3, 7, 8 and 9 look back a bounded time from the latest ALT or
AST result or from now. Every result within `RuleConfig.recent_lookback` can matter. Older results
of the other analytes matter as that analyte's latest result (monitoring cadence, data quality,
the card's table) and as policy-13 history. Every ALT and AST result is still validated and read
(an invalid one is named as unusable at any age, `data_quality`), but an older result reaches
the rules only when it can matter in one of these ways (`needed_older_results`):

- **Policy 12, the withhold episode** (ALT and AST). Call a run a stretch of consecutive instants
  whose ALT and AST results are all below 3× ULN and that holds at least one ALT and one AST.
  After a run, no episode is open, whatever came before it: an open one ends within the run (the
  latest ALT and AST since it are both below 3× ULN), and none can begin in it (nothing in it is
  ≥3× ULN, so nothing warrants withholding). What happens after the run depends only on the
  run's last instant (which may confirm the next result) and on what follows. So the results
  from the newest run on decide the episode exactly as the whole history does
  (`since_last_run`); an open episode, its first warranting result (`began_with`, the card's
  deciding result) and everything since it all lie after that run. The same holds when the
  results before the course began are history (policy 13): history cuts the same time-ordered
  sequence from its start.
- **Policy 8, resolved after an elevation** (ALT and AST). ALT/AST ≥3× ULN within
  `RuleConfig.resolved_elevation_lookback` of the latest valid ALT/AST (`elevations_within`);
  policy 1's elevation within 31 days of now lies inside the recent window.
- **Policy 13, history on the card** (every analyte with a ULN). Per analyte, the highest result
  above ULN taken before the course began (or before the baseline window). That time is not
  known while reading, so every result at least as high as all older ones of its analyte is read
  (`history_records`): the highest before any time (the newest of equal highest ones) is always
  one of them. Only a result at or above its ULN (`may_matter_older`) is offered for this.

When a record is read for evaluation at `now`
Then only the results inside that window, each analyte's latest, the older results above
and the invalid ones reach the record. Property tests check that every finding, and the history
on the card, is the same with and without the window.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from functools import partial

from cds_service.rules.config import RuleConfig
from cds_service.rules.decision import AssessedResult
from cds_service.rules.transaminases import is_elevation, multiple_rank
from cds_service.rules.uln import assess_result, is_above_uln, uln_for
from fhir_mappings.values import TRANSAMINASES, Analyte, LabResult, ReadingWindow


def reading_window(config: RuleConfig, now: datetime) -> ReadingWindow:
    """Return the window of liver results the rules can use when evaluating at `now`."""

    def select(results: Sequence[LabResult], is_valid: Callable[[int], bool]) -> set[int]:
        return needed_older_results(results, is_valid, config)

    return ReadingWindow(
        now=now,
        recent=config.recent_lookback,
        lookback=None,
        anchors=TRANSAMINASES,
        keep_older=partial(may_matter_older, config),
        select_older=select,
        older_analytes=None,  # any analyte's history (policy 13)
    )


# A float at or above the ULN, within rounding: the exact comparison is `is_above_uln`'s.
_FLOAT_MARGIN = 1 - 1e-9


def may_matter_older(config: RuleConfig, result: LabResult) -> bool:
    """Return True for an older result a rule may still use, as read before validation.

    Any ALT or AST (policies 8, 12 and 13); another analyte's result only at or above its ULN
    (policy 13's history), compared in floats: `history_records` decides exactly.
    """
    if result.analyte in TRANSAMINASES:
        return True
    uln, _ = uln_for(result, config)
    return uln is not None and result.value >= uln * _FLOAT_MARGIN


def needed_older_results(
    results: Sequence[LabResult], is_valid: Callable[[int], bool], config: RuleConfig
) -> set[int]:
    """Return the indices of the `results` a rule can act on (see the module docstring).

    `results` are read before validation; `is_valid(i)` validates the i-th and says whether it
    stands as read (an invalid one is no result at all to the rules). ALT/AST results whose level
    is unknown (censored and ambiguous) are kept, so the card names them as before; another
    analyte's is never history (which lists results above ULN).
    """
    assessed: dict[int, AssessedResult] = {}
    transaminases: set[int] = set()  # the indices of the assessed ALT/AST results
    keep: set[int] = set()
    timed: list[tuple[datetime, int]] = []  # (instant, index) of each assessed result
    for index, result in enumerate(results):
        outcome = assess_result(result, config)
        is_transaminase = result.analyte in TRANSAMINASES
        if isinstance(outcome, AssessedResult):
            assessed[index] = outcome
            timed.append((result.effective, index))
            if is_transaminase:
                transaminases.add(index)
        elif is_transaminase:
            keep.add(index)
    every_instant = _by_instant(timed)
    transaminase_instants = [
        kept for instant in every_instant if (kept := [i for i in instant if i in transaminases])
    ]
    keep.update(since_last_run(transaminase_instants, assessed, is_valid, config))
    keep.update(elevations_within(transaminase_instants, assessed, is_valid, config))
    keep.update(history_records(every_instant, assessed, is_valid))
    return keep


def _by_instant(timed: list[tuple[datetime, int]]) -> list[list[int]]:
    """Return the indices of the (instant, index) pairs grouped by instant, oldest first.

    The pairs are sorted in place: the caller's list is built for this alone.
    """
    timed.sort()
    instants: dict[datetime, list[int]] = {}
    for instant, index in timed:
        instants.setdefault(instant, []).append(index)
    return list(instants.values())


def since_last_run(
    oldest_first: Sequence[Sequence[int]],
    assessed: dict[int, AssessedResult],
    is_valid: Callable[[int], bool],
    config: RuleConfig,
) -> list[int]:
    """Return every result from the start of the newest run of normal ALT and AST on (policy 12).

    Instants are walked newest first; each is validated whole. An instant with a valid result
    ≥3× ULN starts the search for a run again; the walk stops at the instant where the valid
    results since the last such instant hold both an ALT and an AST. Without a run, all of them.
    """
    kept: list[int] = []
    seen: set[Analyte] = set()
    for instant in reversed(oldest_first):
        kept.extend(instant)
        valid = [assessed[index] for index in instant if is_valid(index)]
        if any(is_elevation(a, config) for a in valid):
            seen = set()
            continue
        seen.update(a.result.analyte for a in valid)
        if seen.issuperset(TRANSAMINASES):
            break
    return kept


def elevations_within(
    oldest_first: Sequence[Sequence[int]],
    assessed: dict[int, AssessedResult],
    is_valid: Callable[[int], bool],
    config: RuleConfig,
) -> list[int]:
    """Return the results ≥3× ULN policy 8 can look back to from the latest valid ALT/AST."""
    newest = next(
        (
            assessed[index].result.effective
            for instant in reversed(oldest_first)
            for index in instant
            if is_valid(index)
        ),
        None,
    )
    if newest is None:
        return []
    lookback = config.resolved_elevation_lookback
    return [
        index
        for index, a in assessed.items()
        if newest - a.result.effective <= lookback and is_elevation(a, config)
    ]


def history_records(
    oldest_first: Sequence[Sequence[int]],
    assessed: dict[int, AssessedResult],
    is_valid: Callable[[int], bool],
) -> list[int]:
    """Return, per analyte, each result above ULN at least as high as every older valid one.

    Walked oldest first, validating only the results that would be kept: an invalid one is kept
    (the card names it) but raises no bar, so the next valid one below it is still kept.
    """
    bar: dict[Analyte, Decimal] = {}
    kept: list[int] = []
    for instant in oldest_first:
        raised: dict[Analyte, AssessedResult] = {}
        for index in instant:
            a = assessed[index]
            # A smaller float is a smaller decimal whatever its literal: most stop here.
            if a.uln is None or a.result.value < a.uln or not is_above_uln(a):
                continue
            analyte = a.result.analyte
            if analyte in bar and multiple_rank(a) < bar[analyte]:
                continue
            kept.append(index)
            if is_valid(index) and (
                analyte not in raised or multiple_rank(a) > multiple_rank(raised[analyte])
            ):
                raised[analyte] = a
        for analyte, a in raised.items():
            bar[analyte] = multiple_rank(a)
    return kept
