"""The embedded default's SQLite backend (gatehouse/db/sqlite3): a transaction holds the
process's write lock of its database file from BEGIN to COMMIT or ROLLBACK, so another
thread of the process waits on the lock (handed over at once) instead of sleeping in
SQLite's busy handler."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections, transaction

from budgets.models import BudgetHold
from gatehouse.db.sqlite3.base import write_lock

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor != 'sqlite'", reason="the embedded default only"),
]


def lock():
    return write_lock(str(connection.settings_dict["NAME"]))


def hold_row(request_id: str) -> BudgetHold:
    from django.utils import timezone

    now = timezone.now()
    return BudgetHold(request_id=request_id, organization_id=1, amount_units=1, created_at=now, expires_at=now)


def test_a_transaction_holds_the_write_lock_until_commit_or_rollback():
    assert not lock().locked()
    with transaction.atomic():
        hold_row("a").save()
        assert lock().locked()
    assert not lock().locked()
    with pytest.raises(RuntimeError), transaction.atomic():
        hold_row("b").save()
        assert lock().locked()
        raise RuntimeError("rolled back")
    assert not lock().locked()
    assert list(BudgetHold.objects.values_list("request_id", flat=True)) == ["a"]


def test_a_second_writer_of_the_process_waits_for_the_first_and_both_commit():
    order: list[str] = []
    inside = threading.Event()
    release = threading.Event()

    def first():
        with transaction.atomic():
            hold_row("first").save()
            inside.set()
            release.wait(5)
            order.append("first commits")
        connections.close_all()

    def second():
        inside.wait(5)
        with transaction.atomic():
            order.append("second begins")
            hold_row("second").save()
        connections.close_all()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    inside.wait(5)
    release.set()
    for thread in threads:
        thread.join(10)
    assert order == ["first commits", "second begins"]
    assert sorted(BudgetHold.objects.values_list("request_id", flat=True)) == ["first", "second"]
    assert not lock().locked()
