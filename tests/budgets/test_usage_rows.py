"""The prepared usage insert stores exactly what the ORM's `bulk_create` stores."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from django.db import models, transaction

from budgets.models import UsageRecord
from budgets.records import FIELD_NAMES
from budgets.usage import UsageEvent
from budgets.usage_columns import COLUMNS
from budgets.usage_rows import usage_rows_insert

FAR_EAST = timezone(timedelta(hours=5, minutes=30))
COLUMNS_INDEX = {column.name: i for i, column in enumerate(COLUMNS)}


def sample(field: models.Field, index: int):
    """A value of the field's type that is not its default."""
    if isinstance(field, models.DateTimeField):
        return datetime(2026, 3, 1, 23, 45, 12, 345678, tzinfo=FAR_EAST) + timedelta(minutes=index)
    if isinstance(field, models.BooleanField):
        return not field.get_default()
    if isinstance(field, models.CharField):
        return f"vålue-{index}-ünïcode"[: field.max_length]
    if isinstance(field, models.DecimalField):
        return Decimal(1).scaleb(-field.decimal_places) * 1234567 + index
    if isinstance(field, models.FloatField):
        return 812.25 + index
    if isinstance(field, models.IntegerField):
        return 7 + index
    if isinstance(field, models.JSONField):
        return {"trail": [1, 2.5, "ü", None, True], "nested": {"k": index}}
    raise AssertionError(f"no sample for {field!r}")


def full_event(**overrides) -> UsageEvent:
    values = {column.name: sample(column.field, i) for i, column in enumerate(COLUMNS) if column.name in FIELD_NAMES}
    values.update(request_id=uuid.uuid4().hex, **overrides)
    return UsageEvent(**values)


def orm_insert(event: UsageEvent) -> None:
    UsageRecord.objects.bulk_create([UsageRecord(**{name: getattr(event, name) for name in FIELD_NAMES})])


def stored(request_id: str) -> dict:
    row = UsageRecord.objects.filter(request_id=request_id).values().get()
    del row["id"], row["request_id"]
    return row


def both_ways(**overrides) -> tuple[dict, dict]:
    through_orm, prepared = full_event(**overrides), full_event(**overrides)
    with transaction.atomic():
        orm_insert(through_orm)
        usage_rows_insert([prepared])
    return stored(through_orm.request_id), stored(prepared.request_id)


def test_every_column_is_written():
    assert {column.name for column in COLUMNS} == set(FIELD_NAMES)


@pytest.mark.django_db(transaction=True)
def test_a_full_record_reads_back_as_the_orm_stores_it():
    orm, prepared = both_ways()
    assert prepared == orm
    minutes = timedelta(minutes=COLUMNS_INDEX["created_at"])
    assert prepared["created_at"] == datetime(2026, 3, 1, 18, 15, 12, 345678, tzinfo=UTC) + minutes
    assert prepared["metadata"] == {"trail": [1, 2.5, "ü", None, True], "nested": {"k": COLUMNS_INDEX["metadata"]}}


@pytest.mark.django_db(transaction=True)
def test_nulls_and_empty_values_read_back_as_the_orm_stores_them():
    nullable = {column.name: None for column in COLUMNS if column.field.null}
    assert nullable, "the usage record has nullable columns"
    orm, prepared = both_ways(**nullable, tags=[], deployment_facts={}, workflow="")
    assert prepared == orm
    assert all(prepared[name] is None for name in nullable)


@pytest.mark.django_db(transaction=True)
def test_values_of_another_type_are_prepared_as_the_orm_prepares_them():
    orm, prepared = both_ways(
        status_code="503",
        input_tokens=12.0,
        cost="0.25",
        latency_ms=3,
        tags=("a", "b"),
        created_at=datetime(2026, 3, 1, 12, 0, tzinfo=UTC).astimezone(FAR_EAST),
    )
    assert prepared == orm
    assert prepared["status_code"] == 503 and prepared["cost"] == Decimal("0.25") and prepared["tags"] == ["a", "b"]


@pytest.mark.django_db(transaction=True)
def test_a_value_the_orm_refuses_is_refused_too():
    with pytest.raises(ValueError), transaction.atomic():
        orm_insert(full_event(status_code="not a number"))
    with pytest.raises(ValueError), transaction.atomic():
        usage_rows_insert([full_event(status_code="not a number")])
    assert UsageRecord.objects.count() == 0
