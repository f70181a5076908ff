"""Deadlines in working days on mainland China's official calendar.

The 2019 method counts the answer to a correction, deletion or cancellation request (item C6.3) and to a
complaint (C6.5) in working days: at most 15. piguard counts them from the verification of the person's
identity. Working days are the State Council's: weekdays minus
statutory holidays, plus the weekend days made working days in exchange (调休). The calendar comes from
``chinese_calendar`` (PyPI ``chinesecalendar``), which follows each year's State Council notice.

The State Council publishes a year's calendar late in the year before. For a day the package does not know
yet, a weekday counts as a working day and the result is marked provisional; the service recomputes
provisional deadlines once a newer package knows the year (``RightsService.refresh_deadlines``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import chinese_calendar

WORKING_DAYS = 15  # 2019 method C6.3 and C6.5


@dataclass(frozen=True, slots=True)
class Due:
    day: date
    provisional: bool  # True when a day in the count fell in a year the calendar package does not cover


def is_working_day(day: date) -> tuple[bool, bool]:
    """(working, known): ``known`` is False where the package has no data for that year."""
    try:
        return chinese_calendar.is_workday(day), True
    except NotImplementedError:
        return day.weekday() < 5, False


def add_working_days(start: date, days: int = WORKING_DAYS) -> Due:
    """The ``days``-th working day after ``start`` (the start day itself does not count)."""
    if days < 1:
        raise ValueError("days must be at least 1")
    day, counted, provisional = start, 0, False
    while counted < days:
        day += timedelta(days=1)
        working, known = is_working_day(day)
        provisional |= not known
        counted += working
    return Due(day, provisional)


def working_days_between(start: date, end: date) -> int:
    """Working days after ``start`` up to and including ``end`` (negative when ``end`` is earlier)."""
    if end < start:
        return -working_days_between(end, start)
    n, day = 0, start
    while day < end:
        day += timedelta(days=1)
        n += is_working_day(day)[0]
    return n
