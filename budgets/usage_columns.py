"""The usage record's columns, each with the kind of value it stores and its limits.

One description serves both ends: `records.usage_storable` makes every value fit its
column (length, range, type), and `usage_rows` sends values of the column's own
Python type to the database driver as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db import models
from django.db.backends.base.operations import BaseDatabaseOperations

from budgets.models import UsageRecord


@dataclass(frozen=True, slots=True)
class UsageColumn:
    name: str
    kind: str  # str | int | decimal | float | json | datetime | bool
    null: bool
    field: models.Field
    max_length: int = 0
    low: int = 0
    high: int = 0
    limit: Decimal = Decimal(0)
    quantum: Decimal = Decimal(0)


def usage_columns() -> tuple[UsageColumn, ...]:
    ranges = BaseDatabaseOperations.integer_field_ranges  # PostgreSQL's ranges: the narrowest we run on
    out = []
    for column in UsageRecord._meta.concrete_fields:
        if column.primary_key:
            continue
        kind = column.get_internal_type()
        common = {"name": column.name, "null": column.null, "field": column}
        if isinstance(column, models.CharField):
            out.append(UsageColumn(kind="str", max_length=column.max_length, **common))
        elif kind in ranges:
            low, high = ranges[kind]
            out.append(UsageColumn(kind="int", low=low, high=high, **common))
        elif isinstance(column, models.DecimalField):
            quantum = Decimal(1).scaleb(-column.decimal_places)
            limit = Decimal(10) ** (column.max_digits - column.decimal_places) - quantum
            out.append(UsageColumn(kind="decimal", limit=limit, quantum=quantum, **common))
        elif isinstance(column, models.FloatField):
            out.append(UsageColumn(kind="float", **common))
        elif isinstance(column, models.JSONField):
            out.append(UsageColumn(kind="json", **common))
        elif isinstance(column, models.DateTimeField):
            out.append(UsageColumn(kind="datetime", **common))
        else:
            out.append(UsageColumn(kind="bool", **common))
    return tuple(out)


COLUMNS = usage_columns()
