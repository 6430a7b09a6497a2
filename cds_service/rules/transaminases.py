"""Read the transaminases: the current ALT/AST level, confirmation and resolution.

Implements the facts behind the Kynamro PI §2.3 dose modification table and project policies 2, 3,
8 and 12 (docs/clinical-policy.md). The rules that act on them are `withholding`,
`discontinuation` and `closer_monitoring`. The results read here are the current ones of policy
13 (`chart`): history never decides.

When the latest ALT or AST was taken at time T
Then the current results are the latest ALT and the latest AST, each if taken within the
current window (7 days) before T or if it is ≥3× ULN (an elevation stays current until a
later result of the same analyte replaces it, however old it is); the deciding result D is the
current one with the highest multiple of ULN (ALT first on a tie).

When a result is ≥3× ULN and an earlier ALT or AST result, taken before it (a different specimen
time) and at most the confirmation window earlier (31 days, exactly 31 counts), was also ≥3× ULN
with no ALT or AST result below 3× ULN strictly between them
Then it is a confirmed elevation (policy 3, revised 2026-11-30: a late repeat still confirms).

When a result warranted withholding (≥5× ULN, or a confirmed elevation) at time W
Then withholding lasts until an ALT and an AST taken after W are both below 3× ULN, each the
latest of its analyte (a later result ≥3× ULN keeps it, however long ago W was); after that
the episode is resolved (policy 12, PI §2.3 "resume after resolution to <3× ULN").

When no current result is ≥3× ULN but an ALT or AST ≥3× ULN was taken within the resolved-elevation
lookback before T
Then the transaminases have resolved after an elevation (PI §2.3, policy 8).

Safer readings where the brief was silent: every current result is checked for confirmation, not
only D (a confirmed AST elevation still counts when a newer, higher ALT is not yet confirmed), so a
higher value never gives a milder decision. The resolution lookback is measured from T, not from
D: an elevation of one analyte between D and T counts, because it was necessarily followed by a
lower result of the same analyte. Two results of one analyte at the same instant: the higher one
is its latest.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from cds_service.rules.config import RuleConfig
from cds_service.rules.decision import AssessedResult
from cds_service.rules.uln import exact_multiple, reaches_multiple
from fhir_mappings.values import TRANSAMINASES, Analyte


@dataclass(frozen=True, slots=True)
class CurrentTransaminases:
    """The latest ALT/AST instant T and the results that describe the current level."""

    latest_time: datetime
    current: tuple[AssessedResult, ...]  # latest ALT, then latest AST: recent or elevated

    @property
    def deciding(self) -> AssessedResult:
        """Return D, the current result with the highest multiple of ULN (ALT first on a tie)."""
        return highest(self.current)


def multiple_rank(assessed: AssessedResult) -> Decimal:
    """Return the exact multiple of ULN to rank results by (-1 without a ULN)."""
    multiple = exact_multiple(assessed)
    return multiple if multiple is not None else Decimal(-1)


def highest(results: Iterable[AssessedResult]) -> AssessedResult:
    """Return the result with the highest multiple of ULN, the first one on a tie."""
    return max(results, key=multiple_rank)


def by_multiple_descending(results: Iterable[AssessedResult]) -> tuple[AssessedResult, ...]:
    """Return the results highest multiple first, keeping their order on a tie."""
    return tuple(sorted(results, key=multiple_rank, reverse=True))


def is_transaminase(assessed: AssessedResult) -> bool:
    """Return True for an ALT or AST result."""
    return assessed.result.analyte in TRANSAMINASES


def is_elevation(assessed: AssessedResult, config: RuleConfig) -> bool:
    """Return True for a value ≥3× ULN (policy 2)."""
    return reaches_multiple(assessed, config.elevation_multiple)


def is_severe_elevation(assessed: AssessedResult, config: RuleConfig) -> bool:
    """Return True for a value ≥5× ULN (policy 2)."""
    return reaches_multiple(assessed, config.severe_elevation_multiple)


def is_within(first: datetime, second: datetime, window: timedelta) -> bool:
    """Return True when the two instants are at most `window` apart, either way round."""
    return abs(first - second) <= window


def latest_result(results: Sequence[AssessedResult], analyte: Analyte) -> AssessedResult | None:
    """Return the analyte's latest result; on a tie in time, the highest one."""
    of_analyte = [assessed for assessed in results if assessed.result.analyte is analyte]
    if not of_analyte:
        return None
    latest_time = max(assessed.result.effective for assessed in of_analyte)
    return highest(a for a in of_analyte if a.result.effective == latest_time)


def current_transaminases(
    results: Sequence[AssessedResult], config: RuleConfig
) -> CurrentTransaminases | None:
    """Return the current ALT/AST level, or None when there is no usable ALT or AST."""
    transaminases = [assessed for assessed in results if is_transaminase(assessed)]
    if not transaminases:
        return None
    latest_time = max(assessed.result.effective for assessed in transaminases)
    current: list[AssessedResult] = []
    for analyte in TRANSAMINASES:
        latest = latest_result(transaminases, analyte)
        if latest is None:
            continue
        recent = latest_time - latest.result.effective <= config.current_window
        if recent or is_elevation(latest, config):
            current.append(latest)
    return CurrentTransaminases(latest_time=latest_time, current=tuple(current))


def elevations(current: CurrentTransaminases, config: RuleConfig) -> tuple[AssessedResult, ...]:
    """Return the current results ≥3× ULN, highest first."""
    return by_multiple_descending(a for a in current.current if is_elevation(a, config))


def confirming_result(
    candidate: AssessedResult, results: Sequence[AssessedResult], config: RuleConfig
) -> AssessedResult | None:
    """Return the earlier ALT/AST result that confirms `candidate` as ≥3× ULN, if any (policy 3).

    Only the newest earlier instant within the window can confirm: if every result taken then is
    below 3× ULN, it lies strictly between the candidate and any older one.
    """
    if not is_elevation(candidate, config):
        return None
    taken = candidate.result.effective
    earlier = [
        assessed
        for assessed in results
        if is_transaminase(assessed)
        and assessed.result.effective < taken
        and taken - assessed.result.effective <= config.confirmation_window
    ]
    if not earlier:
        return None
    newest = max(assessed.result.effective for assessed in earlier)
    confirming = [
        assessed
        for assessed in earlier
        if assessed.result.effective == newest and is_elevation(assessed, config)
    ]
    return highest(confirming) if confirming else None


def confirmed_elevation(
    current: CurrentTransaminases, results: Sequence[AssessedResult], config: RuleConfig
) -> tuple[AssessedResult, AssessedResult] | None:
    """Return the highest current confirmed elevation and the result confirming it, if any."""
    for candidate in elevations(current, config):
        confirming = confirming_result(candidate, results, config)
        if confirming is not None:
            return candidate, confirming
    return None


def earlier_elevation(
    current: CurrentTransaminases, results: Sequence[AssessedResult], config: RuleConfig
) -> AssessedResult | None:
    """Return the latest ALT/AST ≥3× ULN the current level has resolved from, if any."""
    if elevations(current, config):
        return None
    previous = [
        assessed
        for assessed in results
        if is_transaminase(assessed)
        and is_elevation(assessed, config)
        and current.latest_time - assessed.result.effective <= config.resolved_elevation_lookback
    ]
    if not previous:
        return None
    newest = max(assessed.result.effective for assessed in previous)
    return highest(a for a in previous if a.result.effective == newest)


@dataclass(frozen=True, slots=True)
class WithholdEpisode:
    """A time when withholding began (policy 12) and what has been measured since."""

    began_with: AssessedResult  # the ≥5× ULN or confirmed result that warranted withholding
    since: tuple[AssessedResult, ...]  # later ALT/AST results, oldest first
    resolved: bool  # an ALT and an AST later than its last result ≥3× ULN are below 3× ULN

    def unresolved_analytes(self, config: RuleConfig) -> tuple[Analyte, ...]:
        """Return the transaminases with no result later than the episode's last one ≥3× ULN
        (every such later result is below 3× ULN)."""
        last_elevated = max(
            a.result.effective for a in (self.began_with, *self.since) if is_elevation(a, config)
        )
        later = [a for a in self.since if a.result.effective > last_elevated]
        return tuple(analyte for analyte in TRANSAMINASES if latest_result(later, analyte) is None)


def latest_withhold_episode(
    results: Sequence[AssessedResult], config: RuleConfig
) -> WithholdEpisode | None:
    """Return the latest withholding episode in the results, resolved or not (policy 12).

    One pass over the ALT/AST results in time order, instant by instant: a result warrants
    withholding when it is ≥5× ULN, or ≥3× ULN with a result ≥3× ULN at the previous instant
    no more than the confirmation window earlier (policy 3, as `confirming_result`); an open
    episode only ends when an ALT and an AST later than its last result ≥3× ULN are both below
    3× ULN ("a later result still ≥3× ULN keeps it at withhold"): a result taken at the same
    instant as one ≥3× ULN is not later than it.
    """
    instants: dict[datetime, list[AssessedResult]] = {}
    for assessed in sorted(
        (a for a in results if is_transaminase(a)), key=lambda a: a.result.effective
    ):
        instants.setdefault(assessed.result.effective, []).append(assessed)
    latest: WithholdEpisode | None = None
    began_with: AssessedResult | None = None
    since: list[AssessedResult] = []
    below: dict[Analyte, bool] = {}
    previous: tuple[datetime, list[AssessedResult]] | None = None
    for taken, group in instants.items():
        if began_with is not None:
            since.extend(group)
            if any(is_elevation(a, config) for a in group):
                below = {}  # still ≥3× ULN: an ALT and an AST later than this are needed
            else:
                below.update((a.result.analyte, True) for a in group)
            if all(below.get(analyte, False) for analyte in TRANSAMINASES):
                latest = WithholdEpisode(began_with, tuple(since), resolved=True)
                began_with, since, below = None, [], {}
        else:
            confirmable = (
                previous is not None
                and taken - previous[0] <= config.confirmation_window
                and any(is_elevation(a, config) for a in previous[1])
            )
            warranting = [
                a
                for a in group
                if is_severe_elevation(a, config) or (confirmable and is_elevation(a, config))
            ]
            if warranting:
                began_with = highest(warranting)
        previous = (taken, group)
    if began_with is not None:
        return WithholdEpisode(began_with, tuple(since), resolved=False)
    return latest
