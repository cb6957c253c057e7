"""Hourly rollups equal the raw usage records, computed by a real Celery worker."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from budgets.models import RollupState, UsageHourly
from budgets.rollups import rollup_totals, usage_rollup
from budgets.usage import UsageEvent, UsageSink

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sink() -> UsageSink:
    """The usage sink a gateway would own, without a journal."""
    return UsageSink(journal_dir=None, buffer_max=10_000)


def record(
    sink: UsageSink,
    *,
    at: datetime,
    org: int = 1,
    model: str = "gpt-4o-mini",
    cost: str = "0.0000123456",
    status: int = 200,
    tokens: tuple[int, int] = (100, 20),
    key: int = 7,
) -> None:
    sink.add(
        UsageEvent(
            request_id=f"req_{uuid.uuid4().hex}",
            created_at=at,
            organization_id=org,
            key_id=key,
            endpoint="chat",
            status_code=status,
            model_used=model,
            input_tokens=tokens[0],
            output_tokens=tokens[1],
            cost=Decimal(cost),
            latency_ms=12.5,
            ttft_ms=3.0,
        )
    )


def test_rollup_sums_match_raw_records_exactly_across_hours(sink):
    now = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    for i in range(40):
        record(sink, at=now - timedelta(minutes=37 * i), cost=f"0.{i:04d}000{i % 7}1", model=["a", "b"][i % 2])
    record(sink, at=now, status=502, tokens=(0, 0), cost="0")
    sink.flush()

    result = usage_rollup(now=now)

    totals = rollup_totals()
    assert result["rows"] > 2
    assert totals["raw_requests"] == totals["rollup_requests"] == 41
    assert totals["raw_cost"] == totals["rollup_cost"]
    assert totals["raw_input_tokens"] == totals["rollup_input_tokens"]
    errors = sum(UsageHourly.objects.values_list("errors", flat=True))
    assert errors == 1


def test_rollup_picks_up_late_records_for_old_hours(sink):
    now = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    record(sink, at=now - timedelta(hours=5), cost="1.5")
    sink.flush()
    usage_rollup(now=now)
    # A record for the same old hour arrives after the first run (a late batch).
    record(sink, at=now - timedelta(hours=5), cost="2.25")
    sink.flush()
    usage_rollup(now=now)

    hour = (now - timedelta(hours=5)).replace(minute=0, second=0, microsecond=0)
    rows = UsageHourly.objects.filter(hour=hour)
    assert [(r.requests, r.cost) for r in rows] == [(2, Decimal("3.75"))]


def test_rollup_task_runs_in_a_real_worker_process(sink, celery_worker_process):
    from budgets.tasks import usage_rollup as task

    at = datetime.now(UTC).replace(microsecond=0)
    record(sink, at=at, cost="0.42")
    sink.flush()
    task.delay()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        state = RollupState.objects.filter(name="hourly").first()
        if state is not None and state.last_record_id > 0:
            break
        time.sleep(0.2)
    else:
        pytest.fail("the worker did not run the rollup")
    totals = rollup_totals()
    assert totals["rollup_cost"] == totals["raw_cost"] == Decimal("0.42")
