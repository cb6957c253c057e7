# ruff: noqa: F811 - the store fixture is imported from tests.budgets.helpers
"""Budget leases (budgets/admission/leases.py): far from its limit a budget admits in memory
within a slice the store reserved, near it every request is decided in the store; either
way the limit holds, the ledger follows every request to its counter, and a lease whose
process died expires like any hold."""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal

import pytest

from budgets import services
from budgets.models import BudgetHold, HoldStatus, usd_to_units
from budgets.reconcile import reconcile
from tests.budgets.helpers import admit, budgets, clock, harness, refresh, run, settle, store, tick  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

COST = "0.01"  # each request's worst case


def warm(world) -> None:
    """One request decided on its own: the process has now seen the counter's spend."""
    first = admit(world, cost=COST)
    assert first.ok and first.lease is None
    settle(first, cost="0.004")


def leases_of(org) -> list[BudgetHold]:
    return list(BudgetHold.objects.filter(organization_id=org.id, request_id__startswith="lease:"))


def test_far_from_its_limit_requests_are_admitted_within_a_lease_and_the_ledger_names_them(world, store):
    budget = services.budget_create(organization=world.org, scope="key", scope_id=world.key.id, amount="1000")
    refresh()
    warm(world)
    admitted = [admit(world, cost=COST) for _ in range(10)]
    assert all(a.ok and a.lease is not None for a in admitted)
    assert len({id(a.lease) for a in admitted}) == 1 and budgets().leases.opened == 1
    tick()
    # One hold in the store for the ten: the lease of 32 worst cases, open while they run.
    (lease,) = leases_of(world.org)
    assert lease.status == HoldStatus.HELD and lease.amount_units == 32 * usd_to_units(Decimal(COST))
    for n, admission in enumerate(admitted):
        settle(admission, cost=f"0.00{n}")
    budgets().leases.retire_all()
    run(budgets().drain())
    tick()
    lease.refresh_from_db()
    assert lease.status == HoldStatus.SETTLED
    assert lease.actual_units == usd_to_units(Decimal("0.045"))  # 0.000 + 0.001 + ... + 0.009
    assert sorted(lease.members) == sorted(a.hold.request_id for a in admitted)
    assert not BudgetHold.objects.filter(request_id__in=[a.hold.request_id for a in admitted]).exists()
    (check,) = reconcile(budget_id=budget.id)
    assert check.counter_spent == check.ledger_actual == usd_to_units(Decimal("0.049")) and check.counter_held == 0
    assert check.ledger_requests == 11


def test_a_tick_settles_a_lease_once_it_is_old_enough(world, store, settings):
    settings.GATEHOUSE_BUDGETS = {**settings.GATEHOUSE_BUDGETS, "LEASE_AGE": 0.2}
    harness().rebuild()
    services.budget_create(organization=world.org, scope="team", scope_id=world.team.id, amount="1000")
    refresh()
    warm(world)
    settle(admit(world, cost=COST), cost="0.002")
    time.sleep(0.3)
    tick()
    tick()
    (lease,) = leases_of(world.org)
    assert lease.status == HoldStatus.SETTLED and lease.actual_units == usd_to_units(Decimal("0.002"))
    # The next request places a new lease.
    assert admit(world, cost=COST).lease is not None and budgets().leases.opened == 2


def test_near_its_limit_every_request_is_decided_on_its_own(world, store):
    # Room for 100 worst cases: less than 16 leases of 32, so no lease.
    services.budget_create(organization=world.org, scope="key", scope_id=world.key.id, amount="1")
    refresh()
    warm(world)
    admission = admit(world, cost=COST)
    assert admission.ok and admission.lease is None and budgets().leases.opened == 0


def test_leases_never_take_a_hard_budget_past_its_limit(world, store, settings):
    # A small headroom lets leases run up to the limit: admissions stop exactly where the
    # leases and holds fill it, and what was admitted fits.
    settings.GATEHOUSE_BUDGETS = {**settings.GATEHOUSE_BUDGETS, "LEASE_HEADROOM": 1}
    harness().rebuild()
    budget = services.budget_create(organization=world.org, scope="key", scope_id=world.key.id, amount="2")
    refresh()
    warm(world)  # 0.004 spent
    running = []
    for _ in range(400):
        admission = admit(world, cost=COST)
        if not admission.ok:
            break
        running.append(admission)
    assert budgets().leases.opened >= 2
    assert len(running) * Decimal(COST) <= Decimal("2") - Decimal("0.004")
    assert not admit(world, cost=COST).ok
    for admission in running:
        settle(admission, cost=COST)
    budgets().leases.retire_all()
    run(budgets().drain())
    tick()
    (check,) = reconcile(budget_id=budget.id)
    assert check.counter_spent == usd_to_units(Decimal("0.004") + len(running) * Decimal(COST))
    assert check.counter_spent <= usd_to_units(Decimal("2")) and check.counter_held == 0
    assert check.ledger_actual == check.counter_spent and check.ledger_requests == len(running) + 1


def test_a_lease_whose_process_died_expires_like_any_hold(world, store):
    budget = services.budget_create(organization=world.org, scope="key", scope_id=world.key.id, amount="1000")
    refresh()
    warm(world)
    assert admit(world, cost=COST).lease is not None
    tick()
    dead, harness().owner = harness().owner, None  # gone: nothing settles its lease (a new owner starts)
    (lease,) = leases_of(world.org)
    assert lease.status == HoldStatus.HELD
    later = clock.now() + timedelta(seconds=901)
    with clock.frozen(later):
        refresh()
        tick()
    lease.refresh_from_db()
    assert lease.status == HoldStatus.EXPIRED
    (check,) = reconcile(budget_id=budget.id, at=later)
    assert check.counter_held == 0
    dead.leases.clear()  # its threads' connections are given back; it settles nothing
    run(dead.stop())


def test_a_rate_limit_refusal_gives_the_lease_its_share_back(world, store):
    services.budget_create(organization=world.org, scope="key", scope_id=world.key.id, amount="1000")
    services.rate_limit_set(organization=world.org, scope="key", scope_id=world.key.id, rpm=3, tpm=None)
    refresh()
    warm(world)
    first = admit(world, cost=COST)
    second = admit(world, cost=COST)
    assert first.lease is not None and first.lease is second.lease
    free = first.lease.free
    refused = admit(world, cost=COST)
    assert not refused.ok and refused.refusal.kind == "requests"
    assert first.lease.free == free


def test_raising_a_request_within_its_lease_and_past_it(world, store):
    budget = services.budget_create(organization=world.org, scope="key", scope_id=world.key.id, amount="1000")
    refresh()
    warm(world)
    admission = admit(world, cost=COST)
    lease = admission.lease
    room = lease.free
    assert run(budgets().reserve_more(admission, Decimal("0.05"))) is None  # within the lease's room
    assert lease.free == room - usd_to_units(Decimal("0.05"))
    # More than the lease has left: the store raises the lease's hold.
    assert run(budgets().reserve_more(admission, Decimal("1"))) is None
    tick()
    (row,) = leases_of(world.org)
    assert row.amount_units == 32 * usd_to_units(Decimal(COST)) + usd_to_units(Decimal("1"))
    settle(admission, cost="0.5")
    budgets().leases.retire_all()
    run(budgets().drain())
    tick()
    (check,) = reconcile(budget_id=budget.id)
    assert check.counter_spent == check.ledger_actual == usd_to_units(Decimal("0.504")) and check.counter_held == 0
