"""After a run, name the tests that took over a second without the `slow` marker.

`make test-fast` leaves out the tests marked `slow` so that it stays under 30 s; this list shows
which new test should carry the marker. It reports, it does not fail: timings on a shared
machine vary too much for a verdict.
"""

from __future__ import annotations

import pytest

SLOW_SECONDS = 1.0


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    unmarked = sorted(
        (
            (report.duration, report.nodeid)
            for reports in terminalreporter.stats.values()
            for report in reports
            if isinstance(report, pytest.TestReport)
            and report.when == "call"
            and report.duration > SLOW_SECONDS
            and "slow" not in report.keywords
        ),
        reverse=True,
    )
    if unmarked:
        terminalreporter.write_sep("-", f"over {SLOW_SECONDS:g} s without @pytest.mark.slow")
        for duration, nodeid in unmarked:
            terminalreporter.write_line(f"{duration:5.2f}s {nodeid}")
