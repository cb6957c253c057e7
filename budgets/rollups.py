"""Hourly rollups of usage records, recomputed from the raw rows.

Each run rebuilds every hour touched by records written since the last run (and
always the two most recent hours, for records whose batch committed late), so the
rollup of an hour is by construction the sum of its raw records.

A rollup row carries every dimension the dashboards group by and, per bucket, the
counts, tokens, money and the latency / TTFT histograms (`HISTOGRAM_BOUNDS_MS`).
The aggregation runs in Python over the raw rows on every database: money is summed
as exact `Decimal`s (SQLite stores decimals as binary floats), and the dimensions that
live in a record's metadata (route, cascade layer, data class, tier, reasoning tokens)
are read the same way everywhere. Dimensions a record does not carry itself are
resolved once per run: the key's application name, and the model's tier from the
registry when the record's metadata has none.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import Max, Min, Sum
from django.utils import timezone

from budgets.models import (
    RollupState,
    UsageDaily,
    UsageHourly,
    UsageRecord,
)
from budgets.rollup_facts import (  # what one record adds to its rollup row
    _RECORD_FIELDS,
    FLOAT_SUMS,
    INT_SUMS,
    MONEY_SUMS,
    _add,
    _hour,
    _Lookups,
    _new_row,
    record_facts,
)

STATE_NAME = "hourly"
CHUNK_HOURS = 24


# The dimensions of a rollup row, in the order of its identity tuple.
def _records(start: datetime, end: datetime) -> Iterator[tuple]:
    return (
        UsageRecord.objects.filter(created_at__gte=start, created_at__lt=end)
        .order_by()
        .values_list(*_RECORD_FIELDS)
        .iterator(chunk_size=5000)
    )


def _aggregate(hours: list[datetime], lookups: _Lookups) -> list[UsageHourly]:
    start, end = min(hours), max(hours) + timedelta(hours=1)
    wanted = set(hours)
    groups: dict[tuple, UsageHourly] = {}
    for record in _records(start, end):
        facts = record_facts(record, lookups)
        if facts.hour not in wanted:
            continue
        key = (facts.hour, *facts.ident)
        row = groups.get(key)
        if row is None:
            row = groups[key] = _new_row(facts.hour, facts.ident)
        _add(row, facts)
    return list(groups.values())


def _chunks(hours: list[datetime]) -> Iterable[list[datetime]]:
    """Sorted hours cut into runs that span at most CHUNK_HOURS, so each run reads one window."""
    chunk: list[datetime] = []
    for hour in sorted(hours):
        if chunk and hour - chunk[0] >= timedelta(hours=CHUNK_HOURS):
            yield chunk
            chunk = []
        chunk.append(hour)
    if chunk:
        yield chunk


def _insert(model: type, objects: Iterable[Any], *, batch: int = 1000) -> None:
    """Insert rows with one `executemany` per batch: the same SQL `bulk_create` sends, without
    its per-field compilation, which dominates when a year of hourly rows is rebuilt."""
    ops = connection.ops
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    adapters = []
    for f in fields:
        kind = f.get_internal_type()
        if kind == "DecimalField":
            adapters.append(lambda v, f=f: ops.adapt_decimalfield_value(v, f.max_digits, f.decimal_places))
        elif kind == "DateTimeField":
            adapters.append(ops.adapt_datetimefield_value)
        elif kind == "DateField":
            adapters.append(ops.adapt_datefield_value)
        else:
            adapters.append(None)
    names = [f.attname for f in fields]
    columns = ", ".join(ops.quote_name(f.column) for f in fields)
    sql = (
        f"INSERT INTO {ops.quote_name(model._meta.db_table)} ({columns}) "  # noqa: S608 - names from the model
        f"VALUES ({', '.join(['%s'] * len(fields))})"
    )
    pending: list[list[Any]] = []
    with connection.cursor() as cursor:
        for obj in objects:
            values = obj.__dict__
            pending.append(
                [
                    adapt(values[name]) if adapt is not None and values[name] is not None else values[name]
                    for name, adapt in zip(names, adapters, strict=True)
                ]
            )
            if len(pending) >= batch:
                cursor.executemany(sql, pending)
                pending = []
        if pending:
            cursor.executemany(sql, pending)


def _rebuild(hours: list[datetime], *, daily: bool = True) -> tuple[int, set[int]]:
    """Recompute the hourly rows of these hours (and, with `daily`, the days they touch).

    Returns the rows written and the organizations whose rows changed.
    """
    if not hours:
        return 0, set()
    lookups = _Lookups.load()
    written = 0
    organizations: set[int] = set()
    for chunk in _chunks(hours):
        rows = _aggregate(chunk, lookups)
        organizations.update(
            UsageHourly.objects.filter(hour__in=chunk).values_list("organization_id", flat=True).distinct()
        )
        organizations.update(row.organization_id for row in rows)
        UsageHourly.objects.filter(hour__in=chunk).delete()
        _insert(UsageHourly, rows)
        written += len(rows)
    if daily:
        _rebuild_daily(organizations, hours)
    return written, organizations


# --------------------------------------------------------------------------- daily, per dimension

DAILY_SEPARATOR = "\x1f"
DAILY_RANGE_DAYS = 7
# Dimensions with a row per value and day. Keys, users and applications have nearly as
# many values as requests, so the pages read them from the hourly rows instead.
DAILY_DIMENSION_NAMES = (
    "model",
    "model_requested",
    "provider",
    "deployment",
    "tier",
    "team",
    "workflow",
    "tag",
    "status",
    "data_class",
    "route",
    "layer",
    "endpoint",
)


def daily_dimensions() -> dict[str, tuple[str, ...]]:
    """Dimension name -> the hourly columns its value is made of (`all`: none)."""
    from budgets.finops.queries import DIMENSIONS

    specs: dict[str, tuple[str, ...]] = {"all": ()}
    specs.update({name: (DIMENSIONS[name].column,) for name in DAILY_DIMENSION_NAMES})
    specs["route+model"] = ("route", "model_used")
    return specs


def _rebuild_daily(organizations: set[int], hours: list[datetime]) -> None:
    """Recompute the daily rows of every organization-local day these hours fall in."""
    from budgets.selectors import organization_zone

    for organization_id in sorted(organizations):
        zone = organization_zone(organization_id)
        days = sorted({hour.astimezone(zone).date() for hour in hours})
        batch: list = []
        for day in days:
            if batch and (day - batch[0]).days >= DAILY_RANGE_DAYS:
                _rebuild_days(organization_id, batch, zone)
                batch = []
            batch.append(day)
        if batch:
            _rebuild_days(organization_id, batch, zone)


def _rebuild_days(organization_id: int, days: list, zone) -> None:
    """One query per dimension over the span of `days`, folded from hours into local days."""
    from budgets.finops.queries import money_sum, money_value

    wanted = set(days)
    start = datetime.combine(days[0], datetime.min.time(), tzinfo=zone)
    end = datetime.combine(days[-1] + timedelta(days=1), datetime.min.time(), tzinfo=zone)
    hourly = UsageHourly.objects.filter(organization_id=organization_id, hour__gte=start, hour__lt=end).order_by()
    sums: dict[str, Any] = {name: Sum(name) for name in (*INT_SUMS, *FLOAT_SUMS)}
    sums.update({f"{name}__raw": money_sum(name) for name in MONEY_SUMS})
    plain = (*INT_SUMS, *FLOAT_SUMS)
    rows: dict[tuple, UsageDaily] = {}
    for dimension, columns in daily_dimensions().items():
        for item in hourly.values("hour", *columns).annotate(**sums):
            day = item["hour"].astimezone(zone).date()
            if day not in wanted:
                continue
            values = [item[column] for column in columns]
            if dimension == "tag":
                keys = [t for t in str(values[0] or "").split(",") if t] or [""]
            else:
                keys = [DAILY_SEPARATOR.join("" if v is None else str(v) for v in values)]
            money = [money_value(item[f"{name}__raw"]) for name in MONEY_SUMS]
            for key in keys:
                ident = (day, dimension, key)
                row = rows.get(ident)
                if row is None:
                    row = rows[ident] = UsageDaily(
                        day=day, organization_id=organization_id, dimension=dimension, value=key[:500]
                    )
                    for name in MONEY_SUMS:
                        setattr(row, name, Decimal(0))
                for name in plain:
                    setattr(row, name, getattr(row, name) + (item[name] or 0))
                for name, amount in zip(MONEY_SUMS, money, strict=True):
                    setattr(row, name, getattr(row, name) + amount)
    UsageDaily.objects.filter(organization_id=organization_id, day__in=days).delete()
    _insert(UsageDaily, rows.values())


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
        written, _ = _rebuild(hours)
        state.last_record_id = top
        state.save(update_fields=["last_record_id", "updated_at"])
    planner_statistics()
    return {"hours": len(hours), "rows": written, "last_record_id": top}


def planner_statistics() -> None:
    """Give SQLite's query planner statistics of the rollup indexes (PostgreSQL's autovacuum
    keeps its own). Without them it may read a whole organization's rollups through the team
    index to answer a member's "own keys" page — 680 ms instead of 25 ms at a million records.
    ANALYZE on a sample of each index costs about 10 ms on a 1 GB database."""
    if connection.vendor != "sqlite":
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA analysis_limit=1000")
        cursor.execute("ANALYZE")


def usage_rollup_rebuild(*, since: datetime | None = None, until: datetime | None = None) -> dict[str, int]:
    """Recompute every hour in a range (repairs, backfills); the whole history by default."""
    bounds = UsageRecord.objects.aggregate(first=Min("created_at"), last=Max("created_at"), top=Max("id"))
    since = since or bounds["first"]
    until = until or (bounds["last"] + timedelta(hours=1) if bounds["last"] else None)
    if since is None or until is None:
        return {"hours": 0, "rows": 0}
    hours = []
    hour = _hour(since)
    while hour < until:
        hours.append(hour)
        hour += timedelta(hours=1)
    written = 0
    organizations: set[int] = set()
    for chunk in _chunks(hours):
        with transaction.atomic():
            count, touched = _rebuild(chunk, daily=False)
            written += count
            organizations |= touched
    with transaction.atomic():
        _rebuild_daily(organizations, hours)
    with transaction.atomic():
        state, _ = RollupState.objects.select_for_update().get_or_create(name=STATE_NAME)
        if bounds["top"] and state.last_record_id < bounds["top"] and (not since or since <= bounds["first"]):
            state.last_record_id = bounds["top"]
            state.save(update_fields=["last_record_id", "updated_at"])
    planner_statistics()
    return {"hours": len(hours), "rows": written}


def _rolled_totals(rolled: Any) -> dict[str, Any]:
    totals: dict[str, Any] = defaultdict(int)
    names = (*INT_SUMS, *MONEY_SUMS, *FLOAT_SUMS)
    for values in rolled.values_list(*names).iterator(chunk_size=5000):
        for name, value in zip(names, values, strict=True):
            totals[name] += value
    return totals


def rollup_totals(*, organization_id: int | None = None) -> dict[str, Decimal | int | float]:
    """Every summed column of the rollups and of the raw records side by side.

    Keys are `raw_<column>` and `rollup_<column>`; `rollup_check` compares them.
    """
    raw = UsageRecord.objects.all()
    rolled = UsageHourly.objects.all()
    if organization_id is not None:
        raw = raw.filter(organization_id=organization_id)
        rolled = rolled.filter(organization_id=organization_id)
    lookups = _Lookups.load()
    raw_totals: dict[str, Any] = defaultdict(int)
    for record in raw.order_by().values_list(*_RECORD_FIELDS).iterator(chunk_size=5000):
        facts = record_facts(record, lookups)
        for name, value in facts.ints.items():
            raw_totals[name] += value
        for name, value in zip(MONEY_SUMS, facts.money, strict=True):
            raw_totals[name] += value
        for name, value in zip(FLOAT_SUMS, facts.floats, strict=True):
            raw_totals[name] += value
    rolled_totals = _rolled_totals(rolled)
    result: dict[str, Any] = {}
    for name in (*INT_SUMS, *MONEY_SUMS, *FLOAT_SUMS):
        result[f"raw_{name}"] = raw_totals[name]
        result[f"rollup_{name}"] = rolled_totals[name]
    return result


def rollup_check(*, organization_id: int | None = None) -> list[str]:
    """The columns whose rollup total differs from the raw records (empty: they agree).

    Integers and money must be equal exactly; float sums (milliseconds) within 1e-6
    relative, since adding floats in a different order rounds differently.
    """
    totals = rollup_totals(organization_id=organization_id)
    drift = []
    for name in (*INT_SUMS, *MONEY_SUMS):
        if totals[f"raw_{name}"] != totals[f"rollup_{name}"]:
            drift.append(f"{name}: raw {totals[f'raw_{name}']} != rollup {totals[f'rollup_{name}']}")
    for name in FLOAT_SUMS:
        raw, rolled = float(totals[f"raw_{name}"]), float(totals[f"rollup_{name}"])
        if abs(raw - rolled) > 1e-6 * max(1.0, abs(raw)):
            drift.append(f"{name}: raw {raw} != rollup {rolled}")
    daily = UsageDaily.objects.all()
    if organization_id is not None:
        daily = daily.filter(organization_id=organization_id)
    for dimension in daily_dimensions():
        if dimension == "tag":
            continue  # a record with several tags counts under each
        per_dimension = _rolled_totals(daily.filter(dimension=dimension))
        for name in (*INT_SUMS, *MONEY_SUMS):
            if per_dimension[name] != totals[f"raw_{name}"]:
                drift.append(f"daily {dimension} {name}: {per_dimension[name]} != raw {totals[f'raw_{name}']}")
    return drift
