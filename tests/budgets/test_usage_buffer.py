"""The usage sink: nothing slips past a concurrent flush, values are made storable, a
record the database refuses is set aside without holding back the others, and the
shutdown flush never raises."""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest
from django.db import connection, connections

from audit.models import AuditEvent
from budgets.models import UsageDeadLetter, UsageRecord
from budgets.records import usage_storable
from budgets.usage import UsageEvent, UsageSink
from tests.budgets.helpers import database_unreachable


def event(**values) -> UsageEvent:
    base = {
        "request_id": uuid.uuid4().hex,
        "created_at": datetime.now(UTC),
        "organization_id": 1,
        "endpoint": "chat",
        "status_code": 200,
    }
    return UsageEvent(**{**base, **values})


@pytest.fixture
def sink() -> UsageSink:
    return UsageSink(journal_dir=None, buffer_max=10_000)


@pytest.mark.django_db(transaction=True)
def test_records_added_while_flushing_are_all_written(sink):
    total = 5000
    stop = threading.Event()

    def flusher() -> None:
        try:
            while not stop.is_set():
                sink.flush()
        finally:
            connections.close_all()  # this thread's connection, before the test database is dropped

    thread = threading.Thread(target=flusher)
    thread.start()
    try:
        for _ in range(total):
            sink.add(event())
    finally:
        stop.set()
        thread.join()
    sink.flush()
    assert len(sink) == 0
    assert UsageRecord.objects.count() == total


# --------------------------------------------------------------------------- storable values


def test_storable_cuts_long_text_and_removes_nul_and_flags_it():
    record = usage_storable(
        event(
            model_requested="m" * 201,
            model_used="gpt\x00-4o",
            error_message="x" * 900,
            end_user="bad \ud800 surrogate",
        )
    )
    assert record.model_requested == "m" * 200
    assert record.model_used == "gpt-4o"
    assert len(record.error_message) == 500
    assert record.end_user == "bad  surrogate"
    assert record.sanitized is True


def test_storable_cleans_json_keys_and_values_and_drops_non_finite_floats():
    record = usage_storable(
        event(
            tags=["ok", "t\x00ag", float("nan")],
            metadata={"k\x00ey": "v\x00", "n": float("inf"), "nested": {"deep": ["a\x00"]}, "d": Decimal("1.5")},
        )
    )
    assert record.tags == ["ok", "tag"]
    assert record.metadata == {"key": "v", "nested": {"deep": ["a"]}, "d": "1.5"}
    assert record.sanitized is True


def test_storable_clamps_numbers_to_their_columns():
    record = usage_storable(
        event(
            input_tokens=-5,
            output_tokens=10**12,
            attempts=70_000,
            cost=Decimal("1e15"),
            ttft_ms=float("nan"),
            latency_ms=float("inf"),
        )
    )
    assert record.input_tokens == 0
    assert record.output_tokens == 2147483647
    assert record.attempts == 32767
    assert record.cost == Decimal("9999999999.9999999999")
    assert record.ttft_ms is None
    assert record.latency_ms == 0.0
    assert record.sanitized is True


def test_storable_leaves_a_clean_record_unflagged():
    record = usage_storable(event(model_used="gpt-4o", metadata={"a": [1, 2.5, "x"]}, tags=["t"], ttft_ms=3.0))
    assert record.sanitized is False
    assert record.metadata == {"a": [1, 2.5, "x"]}


# --------------------------------------------------------------------------- poisoned batches


@pytest.mark.django_db(transaction=True)
def test_the_201_character_model_name_and_the_nul_byte_are_written_sanitized(sink):
    """On PostgreSQL both fail the insert unsanitized; here they are cut and cleaned and flagged."""
    long_name = event(model_requested="m" * 201)
    nul = event(model_requested="gpt\x00-evil", metadata={"x": "\x00"})
    clean = [event() for _ in range(5)]
    for record in (long_name, *clean, nul):
        sink.add(record)
    assert sink.flush() == 7
    stored = {r.request_id: r for r in UsageRecord.objects.all()}
    assert len(stored) == 7
    assert stored[long_name.request_id].model_requested == "m" * 200
    assert stored[long_name.request_id].sanitized
    assert stored[nul.request_id].model_requested == "gpt-evil"
    assert stored[nul.request_id].metadata == {"x": ""}
    assert not any(stored[r.request_id].sanitized for r in clean)
    assert not UsageDeadLetter.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_postgresql_really_refuses_the_unsanitized_values():
    """Why sanitizing matters: the raw values fail a PostgreSQL insert."""
    from django.db import DataError, transaction

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only (SQLite stores both values as they are)")
    for bad in ({"model_requested": "m" * 201}, {"model_requested": "a\x00b"}):
        raw = event(**bad)
        with pytest.raises(DataError), transaction.atomic():
            UsageRecord.objects.create(**{k: getattr(raw, k) for k in raw.__dataclass_fields__})


@pytest.mark.django_db(transaction=True)
def test_a_record_the_database_refuses_is_set_aside_and_the_others_are_written(sink, caplog):
    """A missing status code is nothing sanitizing can invent: the insert fails for real."""
    good = [event(organization_id=7) for _ in range(40)]
    bad = event(organization_id=7, status_code=None)
    batch = good[:13] + [bad] + good[13:]
    for record in batch:
        sink.add(record)
    with caplog.at_level(logging.INFO, logger="budgets"):
        written = sink.flush()
    assert written == 40
    assert len(sink) == 0
    assert set(UsageRecord.objects.values_list("request_id", flat=True)) == {r.request_id for r in good}
    letter = UsageDeadLetter.objects.get()
    assert letter.request_id == bad.request_id
    assert letter.organization_id == 7
    assert orjson.loads(letter.record)["status_code"] is None
    assert "status_code" in letter.error or "NULL" in letter.error.upper()
    audit = AuditEvent.objects.get(action="usage.dead_letter")
    assert audit.organization_id == 7 and audit.data["request_ids"] == [bad.request_id]
    assert sink.dead_letters == 1
    # One log line for the dead letter, no traceback.
    lines = [r for r in caplog.records if bad.request_id in r.getMessage()]
    assert len(lines) == 1 and lines[0].exc_info is None
    # Nothing left to retry: the next flush writes the next records at once.
    later = event()
    sink.add(later)
    assert sink.flush() == 1
    assert UsageRecord.objects.filter(request_id=later.request_id).exists()


@pytest.mark.django_db(transaction=True)
def test_several_bad_records_in_one_batch_are_each_isolated(sink):
    good = [event() for _ in range(30)]
    bad = [event(status_code=None), event(organization_id=None), event(created_at=None)]
    for i, record in enumerate(good):
        sink.add(record)
        if i % 10 == 3:
            sink.add(bad[i // 10])
    assert sink.flush() == 30
    assert UsageRecord.objects.count() == 30
    assert set(UsageDeadLetter.objects.values_list("request_id", flat=True)) == {r.request_id for r in bad}
    unknown_org = UsageDeadLetter.objects.get(request_id=bad[1].request_id)
    assert unknown_org.organization_id is None


@pytest.mark.django_db(transaction=True)
def test_a_duplicate_request_id_is_written_once_and_not_a_dead_letter(sink):
    first = event()
    sink.add(first)
    sink.add(event(request_id=first.request_id, status_code=500))
    sink.flush()
    sink.add(event(request_id=first.request_id, status_code=429))
    sink.flush()
    assert list(UsageRecord.objects.values_list("request_id", "status_code")) == [(first.request_id, 200)]
    assert not UsageDeadLetter.objects.exists()


# --------------------------------------------------------------------------- shutdown


@pytest.mark.django_db(transaction=True)
def test_the_shutdown_flush_writes_the_good_records_and_does_not_raise(sink):
    good = [event() for _ in range(48)]
    for record in good[:20] + [event(status_code=None)] + good[20:]:
        sink.add(record)
    assert sink.flush_final() == 48
    assert UsageRecord.objects.count() == 48
    assert UsageDeadLetter.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_shutdown_flush_does_not_raise_when_the_database_is_gone(sink, caplog, settings):
    """An unreachable database: the records stay buffered (and are logged when there is no journal)."""
    records = [event() for _ in range(3)]
    for record in records:
        sink.add(record)
    with database_unreachable(), caplog.at_level(logging.ERROR, logger="budgets"):
        assert sink.flush() == 0
        assert len(sink) == 3  # kept for the next attempt
        assert sink.unavailable
        assert sink.flush_final() == 0
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert all(r.request_id in logged for r in records)
    assert UsageRecord.objects.count() == 0
    assert not UsageDeadLetter.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_records_kept_while_the_database_is_unreachable_are_written_when_it_returns(sink):
    records = [event() for _ in range(5)]
    for record in records:
        sink.add(record)
    with database_unreachable():
        assert sink.flush() == 0
        assert sink.flush() == 0
    assert len(sink) == 5
    assert sink.flush() == 5
    assert not sink.unavailable
    assert UsageRecord.objects.count() == 5


@pytest.mark.django_db(transaction=True)
def test_postgresql_refusals_of_raw_values_are_isolated_by_bisection():
    """The writer itself, handed values nobody sanitized: PostgreSQL refuses them for real."""
    from budgets.records import usage_write

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only (SQLite stores both values as they are)")
    good = [event() for _ in range(46)]
    raw = [event(model_requested="m" * 201), event(model_used="a\x00b")]
    result = usage_write(good[:10] + raw[:1] + good[10:30] + raw[1:] + good[30:])
    assert (result.written, result.dead, result.kept) == (46, 2, [])
    assert UsageRecord.objects.count() == 46
    errors = dict(UsageDeadLetter.objects.values_list("request_id", "error"))
    assert "too long" in errors[raw[0].request_id]
    assert "NUL" in errors[raw[1].request_id]
