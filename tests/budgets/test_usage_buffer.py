"""The usage buffer loses nothing while records arrive during a flush."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime

import pytest

from budgets.models import UsageRecord
from budgets.usage import UsageEvent, usage_buffer


@pytest.mark.django_db(transaction=True)
def test_records_added_while_flushing_are_all_written():
    total = 5000
    stop = threading.Event()

    def flusher() -> None:
        while not stop.is_set():
            usage_buffer.flush()

    thread = threading.Thread(target=flusher)
    thread.start()
    try:
        now = datetime.now(UTC)
        for _ in range(total):
            usage_buffer.add(
                UsageEvent(
                    request_id=uuid.uuid4().hex, created_at=now, organization_id=1, endpoint="chat", status_code=200
                )
            )
    finally:
        stop.set()
        thread.join()
    usage_buffer.flush()
    assert len(usage_buffer) == 0
    assert UsageRecord.objects.count() == total
