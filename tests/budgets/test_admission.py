"""The admission on both counter stores: a request reserves its worst case on every
applicable budget at once or on none, settlement books the real cost, failures
release, expired holds are released and show in the ledger, periods reset by
identity, and rate limits refuse with a wait."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from budgets import services
from budgets.models import BudgetCounter, BudgetHold, HoldStatus, units_to_usd, usd_to_units
from tests.budgets.helpers import admit, clock, harness, refresh, settle, tick

pytestmark = pytest.mark.django_db(transaction=True)

JAN = datetime(2026, 1, 20, 12, tzinfo=UTC)


def counter(budget, at=None) -> BudgetCounter:
    from budgets.periods import period_bounds, zone_of

    start, _ = period_bounds(budget.period, at or clock.now(), zone_of(budget.organization.time_zone))
    return BudgetCounter.objects.get(budget=budget, period_start=start)


def test_hard_budget_admits_while_the_worst_case_fits_then_names_scope_and_reset(world, store):
    budget = services.budget_create(organization=world.org, scope="team", scope_id=world.team.id, amount="0.05")
    refresh()
    admitted = [admit(world, cost="0.01") for _ in range(5)]
    assert all(a.ok and a.hold is not None for a in admitted)
    refused = admit(world, cost="0.01")
    assert not refused.ok and refused.hold is None
    assert refused.refusal.kind == "budget" and refused.refusal.scope == "team"
    assert "team 'Research'" in refused.refusal.message and "resets at" in refused.refusal.message
    assert refused.refusal.resets_at is not None and refused.refusal.retry_after > 0
    tick()
    row = counter(budget)
    assert (row.spent_units, row.held_units) == (0, usd_to_units(Decimal("0.05")))


def test_reservation_is_all_scopes_or_none(world, store):
    key_budget = services.budget_create(organization=world.org, scope="key", scope_id=world.key.id, amount="1")
    org_budget = services.budget_create(
        organization=world.org, scope="organization", scope_id=world.org.id, amount="0.015"
    )
    refresh()
    assert admit(world, cost="0.01").ok
    refused = admit(world, cost="0.01")
    assert refused.refusal.scope == "organization"
    tick()
    # The key had room, but nothing was reserved on it for the refused request.
    assert counter(key_budget).held_units == counter(org_budget).held_units == usd_to_units(Decimal("0.01"))


def test_settlement_replaces_the_hold_and_failures_release_it(world, store):
    budget = services.budget_create(organization=world.org, scope="user", scope_id=world.member.id, amount="1")
    refresh()
    ok, failed, partly = admit(world, cost="0.2"), admit(world, cost="0.2"), admit(world, cost="0.2")
    settle(ok, cost="0.0123456789", tokens=50)
    settle(failed, failed=True)
    settle(partly, cost="0.001", tokens=10, failed=True)  # a stream cut off mid-way still costs what it used
    tick()
    row = counter(budget)
    assert row.held_units == 0
    assert row.spent == Decimal("0.0133456789")
    statuses = dict(BudgetHold.objects.values_list("request_id", "status"))
    assert statuses == {
        ok.hold.request_id: HoldStatus.SETTLED,
        failed.hold.request_id: HoldStatus.RELEASED,
        partly.hold.request_id: HoldStatus.SETTLED,
    }
    assert BudgetHold.objects.get(request_id=ok.hold.request_id).actual_units == usd_to_units(Decimal("0.0123456789"))


def test_room_freed_by_settlement_admits_again_no_false_refusal(world, store):
    services.budget_create(organization=world.org, scope="key", scope_id=world.key.id, amount="0.03")
    refresh()
    first = [admit(world, cost="0.01") for _ in range(3)]
    assert not admit(world, cost="0.01").ok
    for admission in first:
        settle(admission, cost="0.002")
    tick()
    # 0.006 spent: three more worst cases of 0.0079 fit (0.006 + 3 * 0.0079 = 0.0297).
    assert all(admit(world, cost="0.0079").ok for _ in range(3))
    assert not admit(world, cost="0.0079").ok


def test_soft_budget_never_refuses_and_alerts_once_per_threshold(world, store):
    from budgets.models import BudgetAlert

    budget = services.budget_create(
        organization=world.org, scope="team", scope_id=world.team.id, amount="0.01", hard=False, thresholds=[50, 80]
    )
    refresh()
    admissions = [admit(world, cost="1") for _ in range(3)]
    assert all(a.ok for a in admissions)
    settle(admissions[0], cost="0.006")
    tick()
    assert list(BudgetAlert.objects.values_list("threshold", flat=True)) == [50]
    settle(admissions[1], cost="0.006")
    settle(admissions[2], cost="0.006")
    tick()
    assert sorted(BudgetAlert.objects.values_list("threshold", flat=True)) == [50, 80, 100]
    assert counter(budget).spent == Decimal("0.018")


def test_a_new_period_is_a_new_counter_and_the_old_one_stays(world, store):
    budget = services.budget_create(
        organization=world.org, scope="key", scope_id=world.key.id, amount="0.01", period="monthly"
    )
    refresh()
    january = admit(world, cost="0.01", at=JAN)
    assert january.ok
    settle(january, cost="0.01")
    tick()
    assert not admit(world, cost="0.001", at=JAN + timedelta(days=11, hours=11, minutes=59)).ok  # Jan 31 23:59
    february = admit(world, cost="0.01", at=datetime(2026, 2, 1, tzinfo=UTC))
    assert february.ok
    tick()
    periods = list(budget.counters.order_by("period_start").values_list("period_start", "spent_units", "held_units"))
    assert periods == [
        (datetime(2026, 1, 1, tzinfo=UTC), usd_to_units(Decimal("0.01")), 0),
        (datetime(2026, 2, 1, tzinfo=UTC), 0, usd_to_units(Decimal("0.01"))),
    ]


def test_expired_holds_are_released_and_recorded_and_late_settlements_still_book(world, store, settings):
    settings.GATEHOUSE_BUDGETS = {**settings.GATEHOUSE_BUDGETS, "HOLD_TTL": 60}
    harness().rebuild()
    budget = services.budget_create(organization=world.org, scope="key", scope_id=world.key.id, amount="0.02")
    refresh()
    start = datetime.now(UTC)
    with clock.frozen(start) as frozen:
        crashed = admit(world, cost="0.01")
        slow = admit(world, cost="0.01")
        assert not admit(world, cost="0.01").ok
        tick()
        assert BudgetHold.objects.filter(status=HoldStatus.HELD).count() == 2
        frozen.advance(timedelta(seconds=61))
        tick()  # the sweep finds both holds past their expiry
        assert admit(world, cost="0.01").ok  # room again: the leaked holds do not cause false refusals
        settle(slow, cost="0.004")  # the slow request ends after its hold expired
        tick()
    rows = {row.request_id: row for row in BudgetHold.objects.all()}
    assert rows[crashed.hold.request_id].status == HoldStatus.EXPIRED
    assert rows[crashed.hold.request_id].settled_at is not None
    late = rows[slow.hold.request_id]
    assert (late.status, late.late, late.actual_units) == (HoldStatus.EXPIRED, True, usd_to_units(Decimal("0.004")))
    row = counter(budget, start)
    assert row.spent == Decimal("0.004") and units_to_usd(row.held_units) == Decimal("0.01")


def test_requests_per_minute_refuse_with_a_wait_and_headers(world, store):
    services.rate_limit_set(organization=world.org, scope="key", scope_id=world.key.id, rpm=3)
    refresh()
    admitted = [admit(world) for _ in range(3)]
    assert all(a.ok for a in admitted)
    headers = dict(admitted[-1].headers)
    assert headers["x-ratelimit-limit-requests"] == "3"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    refused = admit(world)
    assert refused.refusal.kind == "requests" and refused.refusal.scope == "key"
    assert 0 < refused.refusal.retry_after <= 20
    # Another key of the same team is not limited by this key's limit.
    assert admit(world, key=world.other_key).ok


def test_tokens_per_minute_count_the_estimate_then_the_truth(world, store):
    services.rate_limit_set(organization=world.org, scope="team", scope_id=world.team.id, tpm=1000)
    refresh()
    first = admit(world, tokens=900)
    assert first.ok
    assert not admit(world, tokens=200).ok
    settle(first, tokens=100)  # it used far fewer than estimated: 800 go back
    tick()
    second = admit(world, tokens=800)
    assert second.ok
    assert dict(second.headers)["x-ratelimit-limit-tokens"] == "1000"


def test_budget_refusal_takes_nothing_from_the_rate_limits(world, store):
    services.rate_limit_set(organization=world.org, scope="key", scope_id=world.key.id, rpm=2)
    services.budget_create(organization=world.org, scope="key", scope_id=world.key.id, amount="0.01")
    refresh()
    assert admit(world, cost="0.01").ok
    assert admit(world, cost="0.01").refusal.kind == "budget"
    assert admit(world, cost="0").ok  # the refused request did not use up the second slot


def test_requests_without_budgets_or_limits_cost_nothing(world, store):
    from budgets import facade

    refresh()
    assert admit(world) is facade.FREE
    assert not BudgetHold.objects.exists()


def test_redis_that_lost_its_counters_is_restored_from_the_database_before_admitting(world, store):
    """Redis restarted without persistence: the next admission finds the epoch key gone,
    restores the counters (settled spend and open holds) from the database and still
    refuses at the limit."""
    from budgets.conf import budget_settings
    from tests.budgets.helpers import REDIS_URL, redis_flush

    if store != "redis":
        pytest.skip("only Redis can lose its counters")
    budget = services.budget_create(organization=world.org, scope="key", scope_id=world.key.id, amount="0.10")
    refresh()
    first = admit(world, cost="0.03")
    settle(first, cost="0.03")
    second = admit(world, cost="0.02")
    settle(second, cost="0.02")
    running = admit(world, cost="0.04")  # still open when Redis loses everything
    tick()  # the ledger and the mirror are written
    redis_flush(REDIS_URL, budget_settings().redis_prefix)  # every key of this gateway: FLUSHDB, for it
    refused = admit(world, cost="0.02")  # 0.05 spent + 0.04 held + 0.02 > 0.10
    assert refused.refusal is not None and refused.refusal.kind == "budget"
    assert admit(world, cost="0.01").ok  # exactly up to the limit
    assert not admit(world, cost="0.0001").ok
    settle(running, cost="0.01")  # the restored hold is settled and released as usual
    tick()
    row = counter(budget)
    assert (row.spent, row.held_units) == (Decimal("0.06"), usd_to_units(Decimal("0.01")))
