"""Hourly rollups of usage records, recomputed from the raw rows.

Each run rebuilds every hour touched by records written since the last run (and
always the two most recent hours, for records whose batch committed late), so the
rollup of an hour is by construction the sum of its raw records.

Money sums are exact: PostgreSQL sums `numeric` in SQL; SQLite keeps decimals as
binary floats, so there the sums are taken in Python over `Decimal` values.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Count, Max, Q, Sum
from django.db.models.functions import TruncHour
from django.utils import timezone

from budgets.models import RollupState, UsageHourly, UsageRecord

GROUP = ("organization_id", "team_id", "key_id", "model_used")
STATE_NAME = "hourly"


def _hour(value: datetime) -> datetime:
    return value.replace(minute=0, second=0, microsecond=0)


def _aggregate_sql(hours: list[datetime]) -> list[UsageHourly]:
    rows = (
        UsageRecord.objects.annotate(hour=TruncHour("created_at"))
        .filter(hour__in=hours)
        .values("hour", *GROUP)
        .annotate(
            requests=Count("id"),
            errors=Count("id", filter=Q(status_code__gte=400)),
            input_tokens=Sum("input_tokens"),
            output_tokens=Sum("output_tokens"),
            cached_tokens=Sum("cached_tokens"),
            cost=Sum("cost"),
            latency_ms_sum=Sum("latency_ms"),
            ttft_ms_sum=Sum("ttft_ms"),
            ttft_count=Count("ttft_ms"),
        )
        .order_by()
    )
    return [
        UsageHourly(
            **{key: row[key] for key in ("hour", *GROUP, "requests", "errors")},
            input_tokens=row["input_tokens"] or 0,
            output_tokens=row["output_tokens"] or 0,
            cached_tokens=row["cached_tokens"] or 0,
            cost=row["cost"] or Decimal(0),
            latency_ms_sum=row["latency_ms_sum"] or 0.0,
            ttft_ms_sum=row["ttft_ms_sum"] or 0.0,
            ttft_count=row["ttft_count"],
        )
        for row in rows
    ]


def _aggregate_python(hours: list[datetime]) -> list[UsageHourly]:
    start, end = min(hours), max(hours) + timedelta(hours=1)
    wanted = set(hours)
    groups: dict[tuple, UsageHourly] = {}
    fields = ("created_at", *GROUP, "status_code", "input_tokens", "output_tokens", "cached_tokens", "cost")
    rows = UsageRecord.objects.filter(created_at__gte=start, created_at__lt=end).values_list(
        *fields, "latency_ms", "ttft_ms"
    )
    for created_at, org, team, key, model, status, tin, tout, tcached, cost, latency, ttft in rows.iterator():
        hour = _hour(created_at)
        if hour not in wanted:
            continue
        ident = (hour, org, team, key, model)
        roll = groups.get(ident)
        if roll is None:
            roll = groups[ident] = UsageHourly(
                hour=hour, organization_id=org, team_id=team, key_id=key, model_used=model, cost=Decimal(0)
            )
        roll.requests += 1
        roll.errors += status >= 400
        roll.input_tokens += tin
        roll.output_tokens += tout
        roll.cached_tokens += tcached
        roll.cost += cost
        roll.latency_ms_sum += latency
        if ttft is not None:
            roll.ttft_ms_sum += ttft
            roll.ttft_count += 1
    return list(groups.values())


def _rebuild(hours: list[datetime]) -> int:
    if not hours:
        return 0
    aggregate = _aggregate_python if connection.vendor == "sqlite" else _aggregate_sql
    rows = aggregate(hours)
    UsageHourly.objects.filter(hour__in=hours).delete()
    UsageHourly.objects.bulk_create(rows, batch_size=500)
    return len(rows)


def usage_rollup(*, now: datetime | None = None) -> dict[str, int]:
    """Bring the hourly rollups up to date with the raw records."""
    now = now or timezone.now()
    with transaction.atomic():
        state, _ = RollupState.objects.select_for_update().get_or_create(name=STATE_NAME)
        top = UsageRecord.objects.aggregate(top=Max("id"))["top"] or 0
        touched = {
            _hour(created_at)
            for created_at in UsageRecord.objects.filter(id__gt=state.last_record_id, id__lte=top)
            .values_list("created_at", flat=True)
            .iterator()
        }
        current = _hour(now)
        touched.update({current, current - timedelta(hours=1)})
        hours = sorted(touched)
        written = _rebuild(hours)
        state.last_record_id = top
        state.save(update_fields=["last_record_id", "updated_at"])
    return {"hours": len(hours), "rows": written, "last_record_id": top}


def usage_rollup_rebuild(*, since: datetime, until: datetime) -> int:
    """Recompute every hour in a range (repairs, backfills)."""
    hours = []
    hour = _hour(since)
    while hour < until:
        hours.append(hour)
        hour += timedelta(hours=1)
    with transaction.atomic():
        return _rebuild(hours)


def rollup_totals(*, organization_id: int | None = None) -> dict[str, Decimal | int]:
    """Totals of rollups and of raw records side by side (used to prove they agree)."""
    raw = UsageRecord.objects.all()
    rolled = UsageHourly.objects.all()
    if organization_id is not None:
        raw = raw.filter(organization_id=organization_id)
        rolled = rolled.filter(organization_id=organization_id)
    totals: dict[str, Decimal | int] = defaultdict(int)
    for cost, tin, tout in raw.values_list("cost", "input_tokens", "output_tokens").iterator():
        totals["raw_requests"] += 1
        totals["raw_cost"] += cost
        totals["raw_input_tokens"] += tin
        totals["raw_output_tokens"] += tout
    for requests, cost, tin, tout in rolled.values_list("requests", "cost", "input_tokens", "output_tokens"):
        totals["rollup_requests"] += requests
        totals["rollup_cost"] += cost
        totals["rollup_input_tokens"] += tin
        totals["rollup_output_tokens"] += tout
    return dict(totals)
