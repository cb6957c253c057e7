"""Calendar periods in an organization's time zone.

A period is [start, end) in UTC, computed from the local calendar date: days start
at local midnight (23 or 25 hours long across a daylight-saving change), weeks on
Monday, months on the 1st. A lifetime budget has one period that never ends.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from budgets.models import Period

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@lru_cache(maxsize=512)
def zone_of(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    # fold=0: where midnight does not exist the day starts at the transition itself,
    # where it exists twice it starts at the first one.
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def _first_of_next_month(day: date) -> date:
    return date(day.year + 1, 1, 1) if day.month == 12 else date(day.year, day.month + 1, 1)


def period_bounds(period: str, at: datetime, zone: ZoneInfo) -> tuple[datetime, datetime | None]:
    """The [start, end) of the period containing `at` (end None for lifetime)."""
    if period == Period.LIFETIME:
        return EPOCH, None
    local = at.astimezone(zone).date()
    if period == Period.DAILY:
        first, after = local, local + timedelta(days=1)
    elif period == Period.WEEKLY:
        first = local - timedelta(days=local.weekday())
        after = first + timedelta(days=7)
    elif period == Period.MONTHLY:
        first, after = local.replace(day=1), _first_of_next_month(local)
    else:
        raise ValueError(f"unknown period {period!r}")
    start, end = _local_midnight(first, zone), _local_midnight(after, zone)
    # A local midnight that does not exist can put the computed start a moment after
    # `at`; the period containing `at` is then the previous one.
    if at < start:
        return period_bounds(period, start - timedelta(microseconds=1), zone)
    return start, end


def previous_period(period: str, start: datetime, zone: ZoneInfo) -> tuple[datetime, datetime | None]:
    return period_bounds(period, start - timedelta(microseconds=1), zone)


class PeriodCache:
    """The current bounds per (zone, period): a boundary is computed once per period, not per request."""

    def __init__(self) -> None:
        self._bounds: dict[tuple[str, str], tuple[datetime, datetime | None]] = {}

    def bounds(self, period: str, at: datetime, zone: ZoneInfo) -> tuple[datetime, datetime | None]:
        key = (zone.key, period)
        cached = self._bounds.get(key)
        if cached is not None:
            start, end = cached
            if start <= at and (end is None or at < end):
                return cached
        found = period_bounds(period, at, zone)
        if found[1] is None or found[1] > at:
            self._bounds[key] = found
        return found
