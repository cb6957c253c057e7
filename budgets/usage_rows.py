"""Usage records inserted with one prepared statement and `executemany`.

What `bulk_create` does for these rows, without building a model instance per
record and asking every field to prepare every value (that cost about as much as
the rest of the request path put together). `usage_storable` has already given
every value its column's Python type (`usage_columns`), so a value of exactly that
type goes to the driver as it is; datetimes and JSON go through the backend's own
adapters, any value of another type through the field's `get_db_prep_save`,
exactly as the ORM sends them (so a value the ORM would refuse is still refused).
`tests/budgets/test_usage_rows.py` checks that both store the same row.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import connection

from budgets.models import UsageRecord
from budgets.usage_columns import COLUMNS

# The Python type each kind of column passes to the driver unchanged (the ORM's own
# preparation returns such values as they are).
_AS_IS = {"str": str, "int": int, "decimal": Decimal, "float": float, "bool": bool}
_PLAN = tuple((column.name, column.kind, _AS_IS.get(column.kind), column.field) for column in COLUMNS)
_STATEMENTS: dict[str, str] = {}


def _sql(vendor: str, quote) -> str:
    names = ", ".join(quote(column.field.column) for column in COLUMNS)
    marks = ", ".join(["%s"] * len(COLUMNS))
    sql = f"INSERT INTO {quote(UsageRecord._meta.db_table)} ({names}) VALUES ({marks})"  # noqa: S608 - names are ours
    if vendor == "postgresql":
        sql += " ON CONFLICT DO NOTHING"
    return sql


def usage_rows(events: list) -> list[list[Any]]:
    """The rows' parameters, in `COLUMNS` order, as the database driver takes them."""
    ops = connection.ops
    rows = []
    for event in events:
        row = []
        for name, kind, as_is, field in _PLAN:
            value = getattr(event, name)
            if value is None or type(value) is as_is:
                row.append(value)
            elif kind == "datetime" and type(value) is datetime:
                row.append(ops.adapt_datetimefield_value(value))
            elif kind == "json" and type(value) in (dict, list):
                row.append(ops.adapt_json_value(value, field.encoder))
            else:
                row.append(field.get_db_prep_save(value, connection))
        rows.append(row)
    return rows


def usage_rows_insert(events: list) -> None:
    """Insert the records; on PostgreSQL request ids already stored are skipped
    (ON CONFLICT DO NOTHING), elsewhere the caller leaves them out first."""
    if not events:
        return
    sql = _STATEMENTS.get(connection.vendor)
    if sql is None:
        sql = _STATEMENTS[connection.vendor] = _sql(connection.vendor, connection.ops.quote_name)
    params = usage_rows(events)
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)
