"""Spend forecast to the end of a period, with weekly seasonality, and budget run-out dates.

Method (stated on the Overview page):
1. Take the daily spend of the last `history` complete days (default 28, four whole weeks).
2. Weekly profile: for each weekday, its mean spend divided by the mean of all days
   (1.0 for every weekday when there is no history on it).
3. Level: the mean of the last 14 complete days, each divided by its weekday factor
   (so a weekend in the window does not pull the level down).
4. Trend: the change of level between the two halves of that 14-day window, per day,
   damped by half and never letting the level fall below zero.
5. Forecast of a remaining day = (level + trend x days ahead) x its weekday factor;
   today's forecast is its full-day forecast minus what it has already spent, never below zero.
The forecast to period end = spent so far + the sum of the remaining days' forecasts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.0001")
ZERO = Decimal(0)


@dataclass(frozen=True)
class Forecast:
    spent: Decimal
    remaining: Decimal
    total: Decimal
    daily: list[tuple[date, Decimal]]  # the forecast of each remaining day (today included)
    weekday_factors: tuple[float, ...]  # Monday first
    level: Decimal
    trend_per_day: Decimal


def _mean(values: list[Decimal]) -> Decimal:
    return sum(values, ZERO) / len(values) if values else ZERO


def weekday_factors(history: list[tuple[date, Decimal]]) -> tuple[float, ...]:
    overall = _mean([amount for _, amount in history])
    if overall <= 0:
        return (1.0,) * 7
    by_weekday: list[list[Decimal]] = [[] for _ in range(7)]
    for day, amount in history:
        by_weekday[day.weekday()].append(amount)
    return tuple(float(_mean(v) / overall) if v else 1.0 for v in by_weekday)


def spend_forecast(
    *, history: list[tuple[date, Decimal]], today: date, today_spent: Decimal, spent: Decimal, period_end: date
) -> Forecast:
    """`history`: complete days before today (oldest first); `period_end`: the period's last day."""
    factors = weekday_factors(history[-28:])
    recent = history[-14:]
    adjusted = [amount / Decimal(str(max(factors[day.weekday()], 0.05))) for day, amount in recent]
    level = _mean(adjusted)
    trend = ZERO
    if len(adjusted) >= 8:
        half = len(adjusted) // 2
        trend = (_mean(adjusted[half:]) - _mean(adjusted[:half])) / Decimal(half) / 2
    days: list[tuple[date, Decimal]] = []
    day = today
    ahead = 0
    while day <= period_end:
        base = max(level + trend * ahead, ZERO) * Decimal(str(factors[day.weekday()]))
        if day == today:
            base = max(base - today_spent, ZERO)
        days.append((day, base.quantize(CENT, rounding=ROUND_HALF_UP)))
        day += timedelta(days=1)
        ahead += 1
    remaining = sum((amount for _, amount in days), ZERO)
    return Forecast(
        spent=spent,
        remaining=remaining,
        total=spent + remaining,
        daily=days,
        weekday_factors=factors,
        level=level.quantize(CENT),
        trend_per_day=trend.quantize(CENT),
    )


def run_out_date(*, amount: Decimal, spent: Decimal, daily_rate: Decimal, today: date) -> date | None:
    """The day a budget reaches its amount at the current daily burn (None: it will not)."""
    if spent >= amount:
        return today
    if daily_rate <= 0:
        return None
    days = (amount - spent) / daily_rate
    if days > 3650:
        return None
    return today + timedelta(days=int(days))
