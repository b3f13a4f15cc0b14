"""Calendar arithmetic of care-gap rules: completed age in months, look-backs, season starts.

Months are calendar months, the day clamped to the month's length. The dates themselves are read
from the record with :func:`ehr.fhir.parse_fhir_date` (:mod:`ehr.modules.care_gaps.facts`).
"""

from __future__ import annotations

import calendar
import datetime as dt

__all__ = ["add_months", "age_in_months", "season_start"]


def age_in_months(birth: dt.date, today: dt.date) -> int:
    months = (today.year - birth.year) * 12 + today.month - birth.month
    if today.day < birth.day:
        months -= 1
    return months


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` moved by ``months`` calendar months (the day clamped to the month's length)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def season_start(today: dt.date, month_day: str) -> dt.date:
    month, day = int(month_day[:2]), int(month_day[3:])

    def on(year: int) -> dt.date:
        return dt.date(year, month, min(day, calendar.monthrange(year, month)[1]))

    start = on(today.year)
    return start if start <= today else on(today.year - 1)
