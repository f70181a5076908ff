"""Due dates on mainland China's official calendar (holidays and make-up working days)."""

from __future__ import annotations

from datetime import date

import pytest
from typer.testing import CliRunner

from piguard.cli import app
from piguard.rights import add_working_days, working_days_between
from piguard.rights.deadlines import is_working_day


def test_national_day_week_is_skipped_and_the_make_up_saturday_counts() -> None:
    # 2026: 1-7 October off; Saturday 10 October worked in exchange (State Council notice for 2026).
    assert is_working_day(date(2026, 10, 5)) == (False, True)
    assert is_working_day(date(2026, 10, 10)) == (True, True)
    due = add_working_days(date(2026, 9, 30))
    assert due.day == date(2026, 10, 27) and not due.provisional
    # Counting plain weekdays would have said 21 October: six days too early for the person's answer.
    assert working_days_between(date(2026, 9, 30), date(2026, 10, 27)) == 15


def test_a_year_the_package_does_not_know_is_counted_on_weekdays_and_marked_provisional() -> None:
    due = add_working_days(date(2026, 12, 28))
    assert due.provisional
    assert due.day == date(2027, 1, 18)  # 29-31 Dec, then 12 weekdays of January 2027 (1 Jan included)


def test_cli_due() -> None:
    res = CliRunner().invoke(app, ["rights", "due", "2026-09-30"])
    assert res.exit_code == 0 and '"due": "2026-10-27"' in res.output
    res = CliRunner().invoke(app, ["rights", "due", "30/09/2026"])
    assert res.exit_code == 2 and "not YYYY-MM-DD" in res.output


def test_days_must_be_positive() -> None:
    with pytest.raises(ValueError):
        add_working_days(date(2026, 1, 5), 0)
