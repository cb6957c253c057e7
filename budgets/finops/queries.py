"""Reads of the hourly rollups for the FinOps pages, the exports and the API.

Every dashboard figure comes from `UsageHourly`, never from scanning raw records.
Money is summed exactly: PostgreSQL sums `numeric`; on SQLite, which keeps decimals
as binary floats, amounts are summed as integers of 1e-10 USD.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import BigIntegerField, DecimalField, F, Q, QuerySet, Sum, Value
from django.db.models.functions import Cast, Coalesce, Round

from budgets.models import HISTOGRAM_BOUNDS_MS, LATENCY_COLUMNS, MONEY, TTFT_COLUMNS, UsageHourly

ZERO = Decimal(0)
_PLACES = MONEY["decimal_places"]
_SCALE = Decimal(10) ** _PLACES
_QUANTUM = Decimal(1).scaleb(-_PLACES)
MILLION = Decimal(1_000_000)


@dataclass(frozen=True)
class Dimension:
    name: str
    label: str
    column: str


DIMENSIONS: dict[str, Dimension] = {
    d.name: d
    for d in (
        Dimension("model", "Model used", "model_used"),
        Dimension("model_requested", "Model asked", "model_requested"),
        Dimension("provider", "Provider", "provider_name"),
        Dimension("deployment", "Deployment", "deployment_name"),
        Dimension("tier", "Tier", "tier"),
        Dimension("team", "Team", "team_id"),
        Dimension("user", "User", "user_id"),
        Dimension("key", "Key", "key_id"),
        Dimension("application", "Application", "application"),
        Dimension("workflow", "Workflow", "workflow"),
        Dimension("tag", "Tag", "tagset"),
        Dimension("status", "Status class", "status_class"),
        Dimension("data_class", "Data class", "data_class"),
        Dimension("route", "Route", "route"),
        Dimension("layer", "Cascade layer", "cascade_layer"),
        Dimension("endpoint", "Endpoint", "endpoint"),
    )
}
INTEGER_DIMENSIONS = {"team", "user", "key", "layer"}


@dataclass(frozen=True)
class Window:
    """A half-open time range [start, end) in an organization's zone, with its label."""

    start: datetime
    end: datetime
    zone: ZoneInfo
    label: str

    @property
    def days(self) -> list[date]:
        first = self.start.astimezone(self.zone).date()
        last = (self.end - timedelta(microseconds=1)).astimezone(self.zone).date()
        return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def day_start(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=zone)


def month_window(today: date, zone: ZoneInfo, *, offset: int = 0) -> Window:
    """The calendar month containing `today`, moved by `offset` months."""
    year, month = today.year, today.month + offset
    while month < 1:
        year, month = year - 1, month + 12
    while month > 12:
        year, month = year + 1, month - 12
    first = date(year, month, 1)
    following = date(year + (month == 12), month % 12 + 1, 1)
    return Window(day_start(first, zone), day_start(following, zone), zone, f"{first:%B %Y}")


@dataclass(frozen=True)
class Scope:
    """What one reader may see: an organization, optionally only some keys (members)."""

    organization_id: int
    key_ids: tuple[int, ...] | None = None  # None: all of the organization

    def rollups(self) -> QuerySet[UsageHourly]:
        queryset = UsageHourly.objects.filter(organization_id=self.organization_id)
        if self.key_ids is not None:
            queryset = queryset.filter(key_id__in=self.key_ids)
        return queryset


@dataclass(frozen=True)
class Filters:
    """Equality filters on any dimension (tag: the rollup's tagset contains it)."""

    values: dict[str, str] = field(default_factory=dict)

    def apply(self, queryset: QuerySet[UsageHourly]) -> QuerySet[UsageHourly]:
        for name, value in self.values.items():
            if value in ("", None) or name not in DIMENSIONS:
                continue
            column = DIMENSIONS[name].column
            if name == "tag":
                queryset = queryset.filter(tagset__contains=f",{value},")
            elif value == "(none)":
                queryset = queryset.filter(Q(**{f"{column}__isnull": True}) | Q(**{column: ""}))
            elif name in INTEGER_DIMENSIONS:
                queryset = queryset.filter(**{column: int(value)})
            else:
                queryset = queryset.filter(**{column: value})
        return queryset


def money_sum(column: str) -> Any:
    if connection.vendor == "sqlite":
        scaled = Cast(Round(F(column) * Value(_SCALE)), BigIntegerField())
        return Coalesce(Sum(scaled), Value(0), output_field=BigIntegerField())
    output = DecimalField(max_digits=30, decimal_places=_PLACES)
    return Coalesce(Sum(column, output_field=output), Value(ZERO), output_field=output)


def money_value(raw: Any) -> Decimal:
    if raw is None:
        return ZERO
    value = Decimal(int(raw)) / _SCALE if connection.vendor == "sqlite" else Decimal(raw)
    return value.quantize(_QUANTUM)


MONEY_COLUMNS = ("cost", "input_cost", "output_cost", "cached_savings")
LIST_COLUMNS = ("list_input_cost", "list_output_cost")  # at the catalog's list prices (the FOCUS export)
COUNT_COLUMNS = (
    "requests",
    "errors",
    "fallbacks",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "ttft_count",
    "gen_tokens",
)
FLOAT_COLUMNS = ("latency_ms_sum", "ttft_ms_sum", "gen_ms_sum")


def _sums(
    *, money: bool | tuple[str, ...] = True, counts: bool = True, floats: bool = False, histograms: bool = False
) -> dict:
    sums: dict[str, Any] = {}
    if money:
        columns = money if isinstance(money, tuple) else MONEY_COLUMNS
        sums.update({f"{c}__raw": money_sum(c) for c in columns})
    if counts:
        sums.update({c: Coalesce(Sum(c), 0) for c in COUNT_COLUMNS})
    if floats:
        sums.update({c: Coalesce(Sum(c), 0.0) for c in FLOAT_COLUMNS})
    if histograms:
        sums.update({c: Coalesce(Sum(c), 0) for c in (*LATENCY_COLUMNS, *TTFT_COLUMNS)})
    return sums


def _finish(row: dict) -> dict:
    sqlite = connection.vendor == "sqlite"
    for column in (*MONEY_COLUMNS, *LIST_COLUMNS):
        name = f"{column}__raw"
        if name in row:
            raw = row.pop(name)
            if raw is None:
                row[column] = ZERO
            elif sqlite:
                row[column] = (Decimal(int(raw)) / _SCALE).quantize(_QUANTUM)
            else:
                row[column] = Decimal(raw).quantize(_QUANTUM)
    return row


def windowed(scope: Scope, window: Window, filters: Filters | None = None) -> QuerySet[UsageHourly]:
    queryset = scope.rollups().filter(hour__gte=window.start, hour__lt=window.end)
    return filters.apply(queryset) if filters else queryset


def totals(queryset: QuerySet[UsageHourly], **kinds: bool) -> dict[str, Any]:
    return _finish(dict(queryset.aggregate(**_sums(**kinds))))


def grouped(queryset: QuerySet[UsageHourly], dimension: str, **kinds: bool) -> list[dict[str, Any]]:
    """Sums per value of one dimension, highest spend first. Tags are split from tagsets:
    a record with two tags counts under each (so tag rows may add up to more than the total)."""
    column = DIMENSIONS[dimension].column
    rows = [_finish(dict(row)) for row in queryset.values(column).annotate(**_sums(**kinds)).order_by()]
    for row in rows:
        row["group"] = row.pop(column)
    if dimension == "tag":
        rows = _explode_tags(rows)
    rows.sort(key=lambda r: (-r.get("cost", ZERO), -r.get("requests", 0), str(r["group"])))
    return rows


def _explode_tags(rows: list[dict]) -> list[dict]:
    merged: dict[str, dict] = {}
    for row in rows:
        tags = [t for t in str(row["group"] or "").split(",") if t] or [""]
        for tag in tags:
            target = merged.get(tag)
            if target is None:
                merged[tag] = {**row, "group": tag}
            else:
                for name, value in row.items():
                    if name != "group":
                        target[name] += value
    return list(merged.values())


def daily(
    queryset: QuerySet[UsageHourly],
    window: Window,
    dimension: str | None = None,
    *,
    only: list[Any] | None = None,
    **kinds: bool,
) -> list[dict[str, Any]]:
    """Sums per day in the window's zone (and per dimension value when given).

    Grouped by hour in SQL and folded into local days here: a date function per row
    is a Python call on SQLite, the hour column is not.
    """
    column = DIMENSIONS[dimension].column if dimension else None
    if only is not None and column:
        queryset = queryset.filter(**{f"{column}__in": only})
    names = ["hour"] + ([column] if column else [])
    merged: dict[tuple, dict[str, Any]] = {}
    zone = window.zone
    for row in queryset.values(*names).annotate(**_sums(**kinds)).order_by():
        day = row.pop("hour").astimezone(zone).date()
        group = row.pop(column) if column else None
        key = (day, group)
        target = merged.get(key)
        if target is None:
            merged[key] = {**row, "day": day, "group": group}
        else:
            for name, value in row.items():
                target[name] = (target[name] or 0) + (value or 0)
    rows = [_finish(row) for row in merged.values()]
    if not dimension:
        for row in rows:
            row.pop("group", None)
    return rows


def daily_cost_series(queryset: QuerySet[UsageHourly], window: Window) -> list[tuple[date, Decimal]]:
    """Spend per day of the window, zero-filled."""
    by_day = {row["day"]: row["cost"] for row in daily(queryset, window, counts=False)}
    return [(day, by_day.get(day, ZERO)) for day in window.days]


# --------------------------------------------------------------------------- derived figures


def percentile_from_counts(counts: list[int], quantile: float) -> float | None:
    """A percentile from histogram counts, interpolated log-linearly inside its bucket."""
    total = sum(counts)
    if total <= 0:
        return None
    rank = quantile * total
    seen = 0
    for index, count in enumerate(counts):
        if count and seen + count >= rank:
            lower = HISTOGRAM_BOUNDS_MS[index - 1] if index > 0 else HISTOGRAM_BOUNDS_MS[0] / 1.585
            upper = HISTOGRAM_BOUNDS_MS[index] if index < len(HISTOGRAM_BOUNDS_MS) else lower * 1.585
            share = (rank - seen) / count
            return round(math.exp(math.log(lower) + share * (math.log(upper) - math.log(lower))), 1)
        seen += count
    return HISTOGRAM_BOUNDS_MS[-1]


def latency_percentiles(row: dict) -> dict[str, float | None]:
    latency = [row.get(c, 0) for c in LATENCY_COLUMNS]
    ttft = [row.get(c, 0) for c in TTFT_COLUMNS]
    return {
        "latency_p50": percentile_from_counts(latency, 0.50),
        "latency_p95": percentile_from_counts(latency, 0.95),
        "latency_p99": percentile_from_counts(latency, 0.99),
        "ttft_p50": percentile_from_counts(ttft, 0.50),
        "ttft_p95": percentile_from_counts(ttft, 0.95),
        "ttft_p99": percentile_from_counts(ttft, 0.99),
    }


def tc_per_million(row: dict) -> Decimal | None:
    """TC/1M: (input tokens x input rate + output tokens x output rate) per 1M tokens."""
    tokens = row.get("input_tokens", 0) + row.get("output_tokens", 0)
    if not tokens:
        return None
    return ((row["input_cost"] + row["output_cost"]) * MILLION / tokens).quantize(Decimal("0.000001"))


def share(part: Decimal | int, whole: Decimal | int) -> float | None:
    return float(part) / float(whole) * 100 if whole else None


def per(amount: Decimal, count: int) -> Decimal | None:
    return (amount / count).quantize(_QUANTUM) if count else None


def labels_for(dimension: str, organization_id: int, values: list[Any]) -> dict[Any, str]:
    """Names for id dimensions (teams, users, keys), in one query; other values name themselves."""
    ids = [v for v in values if isinstance(v, int)]
    if dimension == "team":
        from console.models import Team

        return dict(Team.objects.filter(organization_id=organization_id, id__in=ids).values_list("id", "name"))
    if dimension == "key":
        from console.models import ApiKey

        keys = ApiKey.objects.filter(organization_id=organization_id, id__in=ids).values_list("id", "name", "prefix")
        return {pk: f"{name} ({prefix}…)" for pk, name, prefix in keys}
    if dimension == "user":
        from django.contrib.auth import get_user_model

        return dict(
            get_user_model()
            .objects.filter(id__in=ids, memberships__organization_id=organization_id)
            .values_list("id", "username")
        )
    return {}


def label(dimension: str, value: Any, names: dict[Any, str]) -> str:
    if value in (None, ""):
        return "(none)"
    if dimension == "layer":
        return f"layer {value}"
    return names.get(value, str(value))


# --------------------------------------------------------------------------- slices: the source chosen per question

PAIR_DIMENSIONS = {"route+model": ("route", "model_used")}


def _decode(dimension: str, value: str) -> Any:
    if dimension in INTEGER_DIMENSIONS:
        return int(value) if value not in ("", None) else None
    return value


@dataclass(frozen=True)
class Slice:
    """One reader's traffic in one window under some filters.

    Answers come from the daily per-dimension rows (`UsageDaily`) when the question
    allows it — the whole organization, day-aligned window, and no filter other than
    on the dimension asked about — and from the hourly rollups otherwise. Both are
    sums of the same raw records.
    """

    scope: Scope
    window: Window
    filters: Filters = field(default_factory=Filters)

    def _active(self) -> dict[str, str]:
        return {k: v for k, v in self.filters.values.items() if v not in ("", None) and k in DIMENSIONS}

    def _daily_plan(self, dimension: str | None) -> tuple[str, str | None] | None:
        from budgets.rollups import daily_dimensions

        if self.scope.key_ids is not None:
            return None
        zone = self.window.zone
        for moment in (self.window.start, self.window.end):
            local = moment.astimezone(zone)
            if (local.hour, local.minute, local.second, local.microsecond) != (0, 0, 0, 0):
                return None
        available = daily_dimensions()
        active = self._active()
        if not active:
            name = dimension or "all"
            return (name, None) if name in available else None
        if len(active) == 1:
            (name, value), *_ = active.items()
            if (dimension is None or dimension == name) and name in available:
                encoded = "" if value == "(none)" else str(value)
                return name, encoded
        return None

    def _daily_rows(self, plan: tuple[str, str | None]) -> QuerySet:
        from budgets.models import UsageDaily

        name, value = plan
        first = self.window.start.astimezone(self.window.zone).date()
        end = self.window.end.astimezone(self.window.zone).date()
        rows = UsageDaily.objects.filter(
            organization_id=self.scope.organization_id, dimension=name, day__gte=first, day__lt=end
        ).order_by()
        return rows.filter(value=value) if value is not None else rows

    def hourly(self) -> QuerySet[UsageHourly]:
        return windowed(self.scope, self.window, self.filters)

    def totals(self, **kinds: bool) -> dict[str, Any]:
        plan = self._daily_plan(None)
        source = self._daily_rows(plan) if plan else self.hourly()
        return _finish(dict(source.aggregate(**_sums(**kinds))))

    def grouped(self, dimension: str, **kinds: bool) -> list[dict[str, Any]]:
        """Sums per value of a dimension (or a pair such as `route+model`), highest spend first."""
        plan = self._daily_plan(dimension)
        if plan:
            rows = [_finish(dict(r)) for r in self._daily_rows(plan).values("value").annotate(**_sums(**kinds))]
            for row in rows:
                value = row.pop("value")
                if dimension in PAIR_DIMENSIONS:
                    row["group"] = tuple(value.split("\x1f"))
                else:
                    row["group"] = _decode(dimension, value)
        elif dimension in PAIR_DIMENSIONS:
            columns = PAIR_DIMENSIONS[dimension]
            rows = [_finish(dict(r)) for r in self.hourly().values(*columns).annotate(**_sums(**kinds)).order_by()]
            for row in rows:
                row["group"] = tuple("" if row.get(c) is None else str(row.pop(c)) for c in columns)
        else:
            return grouped(self.hourly(), dimension, **kinds)
        rows.sort(key=lambda r: (-r.get("cost", ZERO), -r.get("requests", 0), str(r["group"])))
        return rows

    def daily(
        self, dimension: str | None = None, *, only: list[Any] | None = None, **kinds: bool
    ) -> list[dict[str, Any]]:
        """Sums per local day (and per dimension value when given; `only` these values)."""
        plan = self._daily_plan(dimension)
        if plan:
            names = ["day"] + (["value"] if dimension else [])
            source = self._daily_rows(plan)
            if only is not None and dimension:
                source = source.filter(value__in=["" if v is None else str(v) for v in only])
            rows = [_finish(dict(r)) for r in source.values(*names).annotate(**_sums(**kinds))]
            for row in rows:
                if dimension:
                    row["group"] = _decode(dimension, row.pop("value"))
            return rows
        rows = daily(self.hourly(), self.window, dimension, only=only if dimension != "tag" else None, **kinds)
        if dimension == "tag":
            merged: dict[tuple, dict] = {}
            for row in rows:
                for tag in [t for t in str(row["group"] or "").split(",") if t] or [""]:
                    key = (row["day"], tag)
                    if key in merged:
                        for name, value in row.items():
                            if name not in ("day", "group"):
                                merged[key][name] += value
                    else:
                        merged[key] = {**row, "group": tag}
            rows = list(merged.values())
        return rows

    def daily_cost(self) -> list[tuple[date, Decimal]]:
        by_day = {row["day"]: row["cost"] for row in self.daily(counts=False)}
        return [(day, by_day.get(day, ZERO)) for day in self.window.days]
