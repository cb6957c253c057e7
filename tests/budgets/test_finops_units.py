"""Money formatting, the forecast with weekly seasonality, and budget run-out dates."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from budgets.finops.forecast import run_out_date, spend_forecast, weekday_factors
from budgets.templatetags.finops_tags import money_text, plain_amount


def test_money_keeps_sub_cent_digits_and_never_uses_exponents():
    assert money_text(Decimal("0.0004")) == "$0.0004"
    assert money_text(Decimal("0E-10")) == "$0.00"
    assert money_text(Decimal("0.0000001234")) == "$0.00000012"
    assert money_text(Decimal("0.012345")) == "$0.012"
    assert money_text(Decimal("1234.5")) == "$1,234.50"
    assert money_text(Decimal("-0.5")) == "-$0.50"
    assert money_text(None) == "—"
    assert plain_amount(Decimal("1E-10")) == "0.0000000001"
    assert plain_amount(Decimal("12.5000000000")) == "12.5"


def weeks_of(values_by_weekday: list[str], weeks: int, end: date) -> list[tuple[date, Decimal]]:
    days = []
    for offset in range(weeks * 7, 0, -1):
        day = end - timedelta(days=offset)
        days.append((day, Decimal(values_by_weekday[day.weekday()])))
    return days


def test_weekly_profile_puts_weekends_below_weekdays():
    history = weeks_of(["10", "10", "10", "10", "10", "2", "2"], 4, date(2026, 3, 30))
    factors = weekday_factors(history)
    assert factors[0] > 1 > factors[5]
    assert round(sum(factors), 6) == 7


def test_forecast_follows_the_weekly_rhythm_to_period_end():
    today = date(2026, 3, 16)  # a Monday
    history = weeks_of(["10", "10", "10", "10", "10", "2", "2"], 4, today)
    result = spend_forecast(
        history=history, today=today, today_spent=Decimal("4"), spent=Decimal("100"), period_end=date(2026, 3, 31)
    )
    by_day = dict(result.daily)
    assert by_day[today] == Decimal("6.0000")  # a weekday's 10, minus the 4 already spent
    assert by_day[date(2026, 3, 17)] == Decimal("10.0000")
    assert by_day[date(2026, 3, 21)] == Decimal("2.0000")  # Saturday
    # 16 days left: 12 weekdays x 10 + 4 weekend days x 2, minus 4 already spent today
    assert result.remaining == Decimal("124.0000")
    assert result.total == Decimal("224.0000")


def test_forecast_without_history_is_what_is_spent():
    result = spend_forecast(
        history=[], today=date(2026, 3, 16), today_spent=Decimal(0), spent=Decimal("5"), period_end=date(2026, 3, 31)
    )
    assert result.total == Decimal("5")


def test_run_out_date():
    today = date(2026, 3, 10)
    assert run_out_date(amount=Decimal(100), spent=Decimal(40), daily_rate=Decimal(10), today=today) == date(
        2026, 3, 16
    )
    assert run_out_date(amount=Decimal(100), spent=Decimal(100), daily_rate=Decimal(1), today=today) == today
    assert run_out_date(amount=Decimal(100), spent=Decimal(0), daily_rate=Decimal(0), today=today) is None
