"""Reads of usage records for the management API and the console.

Sums are computed by the database, never by iterating records. Money stays
Decimal: on SQLite, which stores decimals as floating point, costs are summed as
integers of 1e-10 USD so the totals are exact there too.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import connection
from django.db.models import BigIntegerField, Count, DecimalField, F, Q, QuerySet, Sum, Value
from django.db.models.functions import Cast, Coalesce, NullIf, Round, TruncDate
from django.utils import timezone

from budgets.filters import UsageFilters
from budgets.models import MONEY, UsageRecord
from console.models import ApiKey, Organization, Team

GroupBy = Literal["day", "model", "key", "team"]
GROUP_BY_CHOICES: tuple[str, ...] = ("day", "model", "key", "team")

ORDERING = ("-created_at", "-id")
_COST_DECIMAL_PLACES = MONEY["decimal_places"]
_COST_SCALE = Decimal(10) ** _COST_DECIMAL_PLACES
_COST_QUANTUM = Decimal(1).scaleb(-_COST_DECIMAL_PLACES)
ZERO = Decimal(0)


def usage_list(*, organization_id: int, filters: UsageFilters | None = None) -> QuerySet[UsageRecord]:
    """The organization's usage records, newest first (the order cursor pagination needs)."""
    queryset = UsageRecord.objects.filter(organization_id=organization_id)
    if filters is not None:
        queryset = filters.apply(queryset)
    return queryset.order_by(*ORDERING)


def usage_get(*, organization_id: int, request_id: str) -> UsageRecord | None:
    return UsageRecord.objects.filter(organization_id=organization_id, request_id=request_id).first()


def organization_zone(organization_id: int) -> ZoneInfo:
    """The zone an organization's days are counted in (UTC when unknown)."""
    name = Organization.objects.filter(id=organization_id).values_list("time_zone", flat=True).first() or "UTC"
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _cost_sum() -> Any:
    if connection.vendor == "sqlite":
        scaled = Cast(Round(F("cost") * Value(_COST_SCALE)), BigIntegerField())
        return Coalesce(Sum(scaled), Value(0), output_field=BigIntegerField())
    output = DecimalField(max_digits=30, decimal_places=_COST_DECIMAL_PLACES)
    return Coalesce(Sum("cost", output_field=output), Value(ZERO), output_field=output)


def _cost_value(raw: Any) -> Decimal:
    if raw is None:
        return ZERO
    value = Decimal(int(raw)) / _COST_SCALE if connection.vendor == "sqlite" else Decimal(raw)
    return value.quantize(_COST_QUANTUM)


def _sums() -> dict[str, Any]:
    return {
        "requests": Count("id"),
        "errors": Count("id", filter=Q(status_code__gte=400)),
        "input_tokens": Coalesce(Sum("input_tokens"), 0),
        "output_tokens": Coalesce(Sum("output_tokens"), 0),
        "cached_tokens": Coalesce(Sum("cached_tokens"), 0),
        "cost_raw": _cost_sum(),
    }


def usage_summary(
    *,
    organization_id: int,
    group_by: GroupBy,
    since: datetime | None = None,
    until: datetime | None = None,
    filters: UsageFilters | None = None,
) -> list[dict[str, Any]]:
    """Sums per day (in the organization's time zone), model, key or team.

    Each row: group (str or None), label, requests, errors, input_tokens,
    output_tokens, cached_tokens, cost (Decimal). Days come in calendar order,
    the other groupings by cost, highest first.
    """
    if group_by not in GROUP_BY_CHOICES:
        raise ValueError(f"Unknown grouping {group_by!r}.")
    queryset = usage_list(organization_id=organization_id, filters=filters).order_by()
    if since is not None:
        queryset = queryset.filter(created_at__gte=since)
    if until is not None:
        queryset = queryset.filter(created_at__lt=until)
    if group_by == "day":
        dimension: Any = TruncDate("created_at", tzinfo=organization_zone(organization_id))
    elif group_by == "model":
        dimension = Coalesce(NullIf("model_used", Value("")), "model_requested")
    else:
        dimension = F(f"{group_by}_id")
    rows = list(queryset.annotate(group=dimension).values("group").annotate(**_sums()).order_by("group"))
    for row in rows:
        row["cost"] = _cost_value(row.pop("cost_raw"))
    labels = _labels(group_by, organization_id, [row["group"] for row in rows])
    result = []
    for row in rows:
        group = row["group"]
        if isinstance(group, date):
            group = group.isoformat()
        elif group is not None:
            group = str(group)
        result.append({**row, "group": group, "label": labels.get(row["group"], group or "")})
    if group_by != "day":
        result.sort(key=lambda r: (-r["cost"], -r["requests"], r["label"]))
    return result


def _labels(group_by: str, organization_id: int, values: list[Any]) -> dict[Any, str]:
    """Human names for key and team ids, in one query (records keep ids, not links)."""
    ids = [v for v in values if v is not None]
    if group_by == "key":
        keys = ApiKey.objects.filter(organization_id=organization_id, id__in=ids).values_list("id", "name", "prefix")
        labels = {pk: f"{name} ({prefix}…)" for pk, name, prefix in keys}
        return {**labels, None: "(no key)"}
    if group_by == "team":
        teams = Team.objects.filter(organization_id=organization_id, id__in=ids).values_list("id", "name")
        return {**dict(teams), None: "(no team)"}
    return {}


def usage_totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The sum of summary rows (exact: Decimal and int addition)."""
    totals: dict[str, Any] = {
        "requests": 0,
        "errors": 0,
        "input_tokens": 0,
        "output_tokens": 0,
        "cached_tokens": 0,
        "cost": ZERO,
    }
    for row in rows:
        for name in totals:
            totals[name] += row[name]
    return totals


def usage_daily(*, organization_id: int, days: int = 30) -> list[dict[str, Any]]:
    """Requests and cost for each of the last `days` days (today included), zero-filled."""
    days = max(1, int(days))
    zone = organization_zone(organization_id)
    today = timezone.now().astimezone(zone).date()
    first = today - timedelta(days=days - 1)
    since = datetime.combine(first, datetime.min.time(), tzinfo=zone)
    rows = (
        UsageRecord.objects.filter(organization_id=organization_id, created_at__gte=since)
        .annotate(day=TruncDate("created_at", tzinfo=zone))
        .values("day")
        .annotate(requests=Count("id"), cost_raw=_cost_sum())
        .order_by("day")
    )
    by_day = {row["day"]: row for row in rows}
    series = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        row = by_day.get(day)
        series.append(
            {
                "day": day,
                "requests": row["requests"] if row else 0,
                "cost": _cost_value(row["cost_raw"]) if row else ZERO,
            }
        )
    return series
