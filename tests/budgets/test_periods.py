"""Calendar periods in the organization's zone, under a frozen clock: month ends,
a leap day and daylight-saving changes; a new period is a new counter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from budgets.clock import SYSTEM_CLOCK, FrozenClock
from budgets.models import Period
from budgets.periods import EPOCH, PeriodCache, period_bounds, previous_period

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
UTC_ZONE = ZoneInfo("UTC")


def local(zone, *args) -> datetime:
    return datetime(*args, tzinfo=zone)


@pytest.mark.parametrize(
    ("at", "start", "end"),
    [
        # The last moment of January and the first of February are in different months.
        (local(UTC_ZONE, 2026, 1, 31, 23, 59, 59, 999999), local(UTC_ZONE, 2026, 1, 1), local(UTC_ZONE, 2026, 2, 1)),
        (local(UTC_ZONE, 2026, 2, 1), local(UTC_ZONE, 2026, 2, 1), local(UTC_ZONE, 2026, 3, 1)),
        # December rolls into the next year.
        (local(UTC_ZONE, 2025, 12, 31, 12), local(UTC_ZONE, 2025, 12, 1), local(UTC_ZONE, 2026, 1, 1)),
        # 30-day months.
        (local(UTC_ZONE, 2026, 4, 30, 23), local(UTC_ZONE, 2026, 4, 1), local(UTC_ZONE, 2026, 5, 1)),
        # A leap year's February has 29 days.
        (local(UTC_ZONE, 2028, 2, 29, 23, 30), local(UTC_ZONE, 2028, 2, 1), local(UTC_ZONE, 2028, 3, 1)),
    ],
)
def test_monthly_periods_follow_the_calendar(at, start, end):
    assert period_bounds(Period.MONTHLY, at, UTC_ZONE) == (start, end)


def test_leap_day_is_a_day_of_its_own():
    start, end = period_bounds(Period.DAILY, local(UTC_ZONE, 2028, 2, 29, 8), UTC_ZONE)
    assert (start, end) == (local(UTC_ZONE, 2028, 2, 29), local(UTC_ZONE, 2028, 3, 1))
    before = period_bounds(Period.DAILY, local(UTC_ZONE, 2028, 2, 28, 23, 59), UTC_ZONE)
    assert before[1] == start


def test_month_boundary_is_local_midnight_in_the_organization_zone():
    # 23:30 UTC on Jan 31 is already February 1st in Berlin (UTC+1).
    at = datetime(2026, 1, 31, 23, 30, tzinfo=UTC)
    start, end = period_bounds(Period.MONTHLY, at, BERLIN)
    assert start == datetime(2026, 1, 31, 23, 0, tzinfo=UTC)
    assert end == datetime(2026, 2, 28, 23, 0, tzinfo=UTC)
    assert period_bounds(Period.MONTHLY, at, UTC_ZONE)[0] == datetime(2026, 1, 1, tzinfo=UTC)


def test_spring_forward_day_has_23_hours_and_fall_back_day_25():
    spring = period_bounds(Period.DAILY, local(BERLIN, 2026, 3, 29, 12), BERLIN)
    assert spring[1] - spring[0] == timedelta(hours=23)
    assert spring[0] == datetime(2026, 3, 28, 23, 0, tzinfo=UTC)
    autumn = period_bounds(Period.DAILY, local(BERLIN, 2026, 10, 25, 12), BERLIN)
    assert autumn[1] - autumn[0] == timedelta(hours=25)
    # The month that contains the change still starts and ends at local midnight.
    march = period_bounds(Period.MONTHLY, local(BERLIN, 2026, 3, 30), BERLIN)
    assert march == (datetime(2026, 2, 28, 23, 0, tzinfo=UTC), datetime(2026, 3, 31, 22, 0, tzinfo=UTC))


def test_the_repeated_hour_of_a_fall_back_belongs_to_one_day():
    # 01:30 happens twice in New York on 2026-11-01; both are on that day.
    first = datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT
    second = datetime(2026, 11, 1, 6, 30, tzinfo=UTC)  # 01:30 EST
    assert period_bounds(Period.DAILY, first, NEW_YORK) == period_bounds(Period.DAILY, second, NEW_YORK)


def test_weeks_start_on_monday_local_time():
    start, end = period_bounds(Period.WEEKLY, local(BERLIN, 2026, 3, 1, 22), BERLIN)  # a Sunday
    assert start.astimezone(BERLIN) == local(BERLIN, 2026, 2, 23)
    assert end.astimezone(BERLIN) == local(BERLIN, 2026, 3, 2)
    # The week with the spring change is an hour short.
    spring = period_bounds(Period.WEEKLY, local(BERLIN, 2026, 3, 29, 12), BERLIN)
    assert spring[1] - spring[0] == timedelta(days=7, hours=-1)


def test_lifetime_is_one_period_that_never_ends():
    assert period_bounds(Period.LIFETIME, datetime(2031, 5, 5, tzinfo=UTC), BERLIN) == (EPOCH, None)


def test_previous_period_is_the_one_before():
    start, _ = period_bounds(Period.MONTHLY, local(UTC_ZONE, 2028, 3, 10), UTC_ZONE)
    assert previous_period(Period.MONTHLY, start, UTC_ZONE) == (local(UTC_ZONE, 2028, 2, 1), start)


def test_cached_bounds_roll_over_at_the_boundary_without_any_job():
    cache = PeriodCache()
    clock = FrozenClock(datetime(2026, 1, 31, 22, 59, 59, tzinfo=UTC))
    january = cache.bounds(Period.MONTHLY, clock.now(), BERLIN)
    clock.advance(timedelta(seconds=1))
    february = cache.bounds(Period.MONTHLY, clock.now(), BERLIN)
    assert january[1] == february[0] == datetime(2026, 1, 31, 23, 0, tzinfo=UTC)
    # An older moment (a late settlement) still gets its own period.
    assert cache.bounds(Period.MONTHLY, datetime(2026, 1, 15, tzinfo=UTC), BERLIN) == january


def test_a_frozen_clock_needs_an_aware_time_and_only_moves_when_told():
    with pytest.raises(ValueError):
        FrozenClock(datetime(2026, 1, 1))
    clock = FrozenClock(datetime(2026, 1, 1, tzinfo=UTC))
    assert clock.now() == clock.now() == datetime(2026, 1, 1, tzinfo=UTC)
    assert clock.advance(timedelta(seconds=1)) == datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC)
    assert SYSTEM_CLOCK.now().tzinfo is not None
