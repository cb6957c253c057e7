"""When no gateway process runs, the Celery beat job releases expired holds (and
retries alert deliveries) all the same."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from budgets import services
from budgets.models import BudgetCounter, BudgetHold, HoldStatus, counter_ident, usd_to_units
from budgets.periods import period_bounds, zone_of
from tests.budgets.helpers import admit, clock, harness, refresh, tick

pytestmark = pytest.mark.django_db(transaction=True)


def test_maintenance_releases_what_no_process_settled(world, store, settings):
    from budgets.runtime import Budgets

    settings.GATEHOUSE_BUDGETS = {**settings.GATEHOUSE_BUDGETS, "HOLD_TTL": 30}
    harness().rebuild()
    services.budget_create(organization=world.org, scope="key", scope_id=world.key.id, amount="1")
    refresh()
    start = datetime.now(UTC)
    with clock.frozen(start) as frozen:
        orphan = admit(world, cost="0.5")
        tick()
        frozen.advance(timedelta(seconds=31))
        assert Budgets(clock=clock).maintain() == 1  # what budgets_maintain runs, on this clock
        tick()
    hold = BudgetHold.objects.get(request_id=orphan.hold.request_id)
    assert hold.status == HoldStatus.EXPIRED
    assert BudgetCounter.objects.get().held_units == 0


@pytest.mark.skipif(bool(os.environ.get("REDIS_URL")), reason="the worker's Redis key prefix is its own")
def test_the_beat_job_runs_in_a_real_worker_process(celery_worker_process, world):
    from budgets.tasks import budget_maintenance

    budget = services.budget_create(organization=world.org, scope="team", scope_id=world.team.id, amount="1")
    start, end = period_bounds(budget.period, datetime.now(UTC), zone_of(world.org.time_zone))
    amount = usd_to_units(Decimal("0.25"))
    BudgetCounter.objects.create(
        budget=budget, period_start=start, period_end=end, limit_units=budget.amount_units, held_units=amount
    )
    BudgetHold.objects.create(
        request_id="req_orphan",
        organization_id=world.org.id,
        counters=[counter_ident(budget.id, start)],
        amount_units=amount,
        created_at=datetime.now(UTC) - timedelta(hours=1),
        expires_at=datetime.now(UTC) - timedelta(minutes=1),
    )
    budget_maintenance.delay()
    deadline = time.monotonic() + 30
    while BudgetHold.objects.get(request_id="req_orphan").status == HoldStatus.HELD:
        if time.monotonic() > deadline:
            pytest.fail("the worker did not release the hold")
        time.sleep(0.2)
    assert BudgetHold.objects.get(request_id="req_orphan").status == HoldStatus.EXPIRED
    assert BudgetCounter.objects.get(budget=budget).held_units == 0
