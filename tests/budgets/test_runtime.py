"""The `Budgets` owner: stores that fail (a Redis port with nothing listening, a database
connection that cannot open), per-organization fail modes, hold renewal, raising a hold,
deployment rate limits charged to the deployment tried, group commit, its executors,
and `reconcile_spend` rolling up first and naming hard budgets over their limit."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import io
import threading
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command

from budgets import services
from budgets.admission.refusals import UNAVAILABLE_CODE, BudgetUnavailable
from budgets.models import BudgetCounter, BudgetHold, HoldStatus, StoreFailure, usd_to_units
from budgets.runtime import Budgets
from tests.budgets.helpers import admit, budgets, clock, harness, priced_model, refresh, run, settle, tick
from tests.conftest import free_port

pytestmark = pytest.mark.django_db(transaction=True)


def counter(budget) -> BudgetCounter:
    return BudgetCounter.objects.get(budget=budget)


# --------------------------------------------------------------------------- settings


def test_settings_come_from_the_settings_dict_not_the_environment(settings, monkeypatch):
    from budgets.conf import budget_settings

    monkeypatch.setenv("GATEHOUSE_BUDGET_HOLD_TTL", "7")  # read by settings.py only, at start
    settings.GATEHOUSE_BUDGETS = {**settings.GATEHOUSE_BUDGETS, "HOLD_TTL": 42, "GROUP_COMMIT_MAX": 3}
    conf = budget_settings()
    assert (conf.hold_ttl, conf.group_commit_max) == (42, 3)
    assert conf.redis_prefix == settings.GATEHOUSE_BUDGETS["REDIS_PREFIX"]


# --------------------------------------------------------------------------- Redis unreachable


@pytest.fixture
def dead_redis(settings):
    """REDIS_URL pointing at a loopback port where nothing listens."""
    settings.GATEHOUSE_BUDGETS = {**settings.GATEHOUSE_BUDGETS, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    harness().rebuild()
    yield
    harness().close(keep_loop=True)


def test_unreachable_redis_refuses_with_the_store_named_by_default(world, dead_redis):
    services.budget_create(organization=world.org, scope="key", scope_id=world.key.id, amount="1")
    refresh()
    with pytest.raises(BudgetUnavailable) as caught:
        admit(world, cost="0.01")
    assert caught.value.store == "redis" and caught.value.code == UNAVAILABLE_CODE == "budget_store_unavailable"
    refusal = caught.value.refusal
    assert refusal.kind == "unavailable" and refusal.scope == "redis" and "redis" in refusal.message
    assert budgets().unavailable == 1


def test_unreachable_redis_serves_an_organization_that_fails_open_without_a_hold(world, dead_redis):
    services.budget_create(organization=world.org, scope="key", scope_id=world.key.id, amount="1")
    services.budget_policy_set(organization=world.org, on_store_failure=StoreFailure.OPEN)
    refresh()
    served = admit(world, cost="0.01")
    assert served.ok and served.degraded and served.hold is None
    settle(served, cost="0.01")  # nothing to settle; it does not fail
    assert not BudgetHold.objects.exists()


def test_rate_limits_alone_also_fail_with_the_store(world, dead_redis):
    services.rate_limit_set(organization=world.org, scope="key", scope_id=world.key.id, rpm=10)
    refresh()
    with pytest.raises(BudgetUnavailable):
        admit(world)


# --------------------------------------------------------------------------- database unreachable


def _allow(monkeypatch, alias: str) -> None:
    """Let this test's threads connect to `alias` (Django's test case forbids unknown aliases)."""
    from django.db.backends.base.base import BaseDatabaseWrapper

    patched = BaseDatabaseWrapper.ensure_connection
    cells = dict(
        zip(patched.__code__.co_freevars, (cell.cell_contents for cell in patched.__closure__ or ()), strict=True)
    )
    case = cells.get("cls")
    if case is not None:
        monkeypatch.setattr(case, "databases", frozenset(case.databases) | {alias})


@pytest.fixture
def broken_database(tmp_path, monkeypatch):
    """A database alias whose connection fails for real: a SQLite file in a directory that does
    not exist, or a PostgreSQL port where nothing listens."""
    from django.db import connections

    alias = f"budgets_unreachable_{uuid.uuid4().hex[:6]}"
    default = dict(connections.settings["default"])
    if default["ENGINE"].endswith("sqlite3"):
        broken = {**default, "NAME": str(tmp_path / "missing" / "gatehouse.sqlite3"), "TEST": {}}
    else:
        broken = {**default, "PORT": str(free_port()), "OPTIONS": {"connect_timeout": 2}, "TEST": {}}
    configured = connections.configure_settings({"default": dict(default), alias: broken})
    connections.settings[alias] = configured[alias]
    _allow(monkeypatch, alias)
    yield alias
    del connections.settings[alias]


def _owner_on(alias: str) -> Budgets:
    owner = Budgets(clock=clock, database=alias)
    owner.snapshot_refresh()  # the definitions were read while the database was still there
    return owner


def test_a_failing_database_connection_is_a_503_not_a_500(world, store, broken_database):
    if store != "db":
        pytest.skip("the database admission path")
    services.budget_create(organization=world.org, scope="key", scope_id=world.key.id, amount="1")
    owner = _owner_on(broken_database)

    async def attempt():
        try:
            return await owner.admit(
                request_id="req_db_down",
                organization_id=world.org.id,
                team_id=world.key.team_id,
                user_id=world.key.user_id,
                key_id=world.key.id,
                at=clock.now(),
                cost=Decimal("0.01"),
                tokens=10,
            )
        finally:
            with contextlib.suppress(Exception):  # its database is still unreachable
                await owner.stop()

    with pytest.raises(BudgetUnavailable) as caught:
        run(attempt())
    assert caught.value.store == "database" and caught.value.refusal.scope == "database"


def test_a_failing_database_serves_an_organization_that_fails_open_and_gives_back_its_rate(
    world, store, broken_database
):
    if store != "db":
        pytest.skip("the database admission path")
    services.budget_create(organization=world.org, scope="key", scope_id=world.key.id, amount="1")
    services.rate_limit_set(organization=world.org, scope="key", scope_id=world.key.id, rpm=1)
    services.budget_policy_set(organization=world.org, on_store_failure="open")
    owner = _owner_on(broken_database)

    async def attempts():
        try:
            results = []
            for index in range(2):
                results.append(
                    await owner.admit(
                        request_id=f"req_open_{index}",
                        organization_id=world.org.id,
                        team_id=world.key.team_id,
                        user_id=world.key.user_id,
                        key_id=world.key.id,
                        at=clock.now(),
                        cost=Decimal("0.01"),
                        tokens=10,
                    )
                )
            return results
        finally:
            with contextlib.suppress(Exception):  # its database is still unreachable
                await owner.stop()

    first, second = run(attempts())
    assert first.ok and first.degraded and second.ok and second.degraded
    assert owner.unavailable == 2


# --------------------------------------------------------------------------- renewal


def test_a_renewed_hold_outlives_its_first_expiry_and_one_not_renewed_expires(world, store, settings):
    settings.GATEHOUSE_BUDGETS = {**settings.GATEHOUSE_BUDGETS, "HOLD_TTL": 60}
    harness().rebuild()
    budget = services.budget_create(organization=world.org, scope="key", scope_id=world.key.id, amount="1")
    refresh()
    start = datetime.now(UTC)
    with clock.frozen(start) as frozen:
        streaming = admit(world, cost="0.3")
        forgotten = admit(world, cost="0.3")
        tick()
        for _ in range(4):  # a long stream renews every 30 s
            frozen.advance(timedelta(seconds=30))
            budgets().renew(streaming)
            tick()
        assert frozen.now() - start == timedelta(seconds=120)  # twice the hold lifetime
        rows = {row.request_id: row for row in BudgetHold.objects.all()}
        assert rows[forgotten.hold.request_id].status == HoldStatus.EXPIRED
        assert rows[streaming.hold.request_id].status == HoldStatus.HELD
        assert rows[streaming.hold.request_id].expires_at == start + timedelta(seconds=180)
        settle(streaming, cost="0.25")
        tick()
    row = counter(budget)
    assert (row.spent, row.held_units) == (Decimal("0.25"), 0)
    assert BudgetHold.objects.get(request_id=streaming.hold.request_id).status == HoldStatus.SETTLED


# --------------------------------------------------------------------------- raising a hold


def test_reserve_more_raises_every_counter_or_refuses_and_settlement_releases_the_raised_amount(world, store):
    key_budget = services.budget_create(organization=world.org, scope="key", scope_id=world.key.id, amount="0.10")
    team_budget = services.budget_create(
        organization=world.org, scope="team", scope_id=world.team.id, amount="5", hard=False
    )
    refresh()
    owner = budgets()
    running = admit(world, cost="0.05")
    assert run(owner.reserve_more(running, Decimal("0.04"))) is None
    assert admit(world, cost="0.02").refusal.kind == "budget"  # 0.09 held
    refusal = run(owner.reserve_more(running, Decimal("0.02")))
    assert refusal is not None and refusal.kind == "budget" and refusal.scope == "key"
    other = admit(world, cost="0.01")  # the refused raise changed nothing
    assert other.ok
    tick()
    assert counter(team_budget).held_units == usd_to_units(Decimal("0.10"))  # every counter was raised
    settle(running, cost="0.07")
    tick()
    row = counter(key_budget)
    assert (row.spent, row.held_units) == (Decimal("0.07"), usd_to_units(Decimal("0.01")))
    assert counter(team_budget).held_units == usd_to_units(Decimal("0.01"))
    assert BudgetHold.objects.get(request_id=running.hold.request_id).amount_units == usd_to_units(Decimal("0.09"))


def test_reserve_more_on_a_hold_that_is_gone_refuses(world, store):
    services.budget_create(organization=world.org, scope="key", scope_id=world.key.id, amount="1")
    refresh()
    done = admit(world, cost="0.05")
    settle(done, cost="0.01")
    tick()
    refusal = run(budgets().reserve_more(done, Decimal("0.01")))
    assert refusal is not None and "no longer open" in refusal.message


# --------------------------------------------------------------------------- deployments


def test_deployment_take_charges_the_one_deployment_and_give_back_returns_it(world, store):
    _, limited = priced_model()
    _, free = priced_model(suffix="-free")
    services.rate_limit_set(organization=None, scope="deployment", scope_id=limited.id, rpm=3, tpm=1000)
    refresh()
    owner = budgets()
    taken, charged = run(owner.deployment_take(limited.id, 600))
    assert taken and {key for key, _ in charged} == {
        f"deployment:{limited.id}:requests",
        f"deployment:{limited.id}:tokens",
    }
    assert run(owner.deployment_take(limited.id, 600)) == (False, ())  # short of tokens; no request taken
    assert run(owner.deployment_take(free.id, 10**6)) == (True, ())  # no limits of its own
    owner.deployment_give_back(charged, tokens=600)  # that attempt failed before answering
    run(owner.drain())
    assert run(owner.deployment_take(limited.id, 600))[0]  # the request and the tokens came back
    assert run(owner.deployment_take(limited.id, 300))[0]
    assert run(owner.deployment_take(limited.id, 1))[0]  # the third request this minute
    assert run(owner.deployment_take(limited.id, 1)) == (False, ())  # rpm 3
    gate = run(owner.gate_deployments(deployment_ids=[limited.id, free.id], tokens=10))
    assert gate.refusal is None and gate.skip == 1  # the older call still works


# --------------------------------------------------------------------------- executors and group commit


class CountingExecutor(concurrent.futures.ThreadPoolExecutor):
    """A real thread pool that remembers which threads ran its jobs."""

    def __init__(self, name: str) -> None:
        super().__init__(1, thread_name_prefix=name)
        self.threads: set[str] = set()

    def submit(self, fn, /, *args, **kwargs):
        def recorded():
            self.threads.add(threading.current_thread().name)
            return fn(*args, **kwargs)

        return super().submit(recorded)


@pytest.mark.parametrize("group", [1, 64])
def test_concurrent_database_admissions_run_in_the_given_executor_and_stop_exactly_at_the_limit(
    world, store, settings, group
):
    """With group commit (64: holds that arrive during a transaction share the next one, each in
    a savepoint) and without (1), exactly the holds that fit are admitted."""
    if store != "db":
        pytest.skip("the database admission path")
    settings.GATEHOUSE_BUDGETS = {**settings.GATEHOUSE_BUDGETS, "GROUP_COMMIT_MAX": group}
    budget = services.budget_create(organization=world.org, scope="key", scope_id=world.key.id, amount="0.10")
    services.budget_create(organization=world.org, scope="team", scope_id=world.team.id, amount="0.07")
    admitting, writing = CountingExecutor("dedicated-admit"), CountingExecutor("dedicated-write")
    owner = Budgets(clock=clock, executor=admitting, writer=writing)
    assert owner.conf.group_commit_max == group

    async def burst():
        await owner.start()
        try:
            return await asyncio.gather(
                *(
                    owner.admit(
                        request_id=f"req_burst_{index}",
                        organization_id=world.org.id,
                        team_id=world.key.team_id,
                        user_id=world.key.user_id,
                        key_id=world.key.id,
                        at=clock.now(),
                        cost=Decimal("0.01"),
                        tokens=1,
                    )
                    for index in range(25)
                )
            )
        finally:
            await owner.stop()

    results = run(burst())
    try:
        assert sum(1 for a in results if a.ok) == 7  # the team's budget is the tighter one
        assert all(a.refusal.kind == "budget" and a.refusal.scope == "team" for a in results if not a.ok)
        # A refused hold rolled back alone: nothing of it stays on the key's counter.
        assert counter(budget).held_units == usd_to_units(Decimal("0.07"))
        assert BudgetHold.objects.filter(status=HoldStatus.HELD).count() == 7
        assert (owner.largest_batch > 1) == (group > 1)
        assert admitting.threads and all(name.startswith("dedicated-admit") for name in admitting.threads)
        assert writing.threads and all(name.startswith("dedicated-write") for name in writing.threads)
    finally:
        admitting.shutdown()
        writing.shutdown()


# --------------------------------------------------------------------------- reconcile


def test_reconcile_spend_rolls_up_first_and_names_a_hard_budget_over_its_limit(world, store):
    from budgets.usage import UsageEvent, UsageSink

    budget = services.budget_create(
        organization=world.org, scope="organization", scope_id=world.org.id, amount="0.01", hard=True
    )
    refresh()
    admission = admit(world, cost="0.005", request_id="req_over_limit")
    settle(admission, cost="0.02")  # it cost more than its worst case
    tick()
    buffer = UsageSink()
    buffer.add(
        UsageEvent(
            request_id="req_over_limit",
            created_at=datetime.now(UTC),
            organization_id=world.org.id,
            endpoint="/v1/chat/completions",
            status_code=200,
            team_id=world.key.team_id,
            user_id=world.key.user_id,
            key_id=world.key.id,
            cost=Decimal("0.02"),
        )
    )
    assert buffer.flush() == 1
    stale = io.StringIO()
    with pytest.raises(SystemExit):
        call_command("reconcile_spend", "--no-rollup", "--check", stdout=stale)
    assert "DRIFT: rollups" in stale.getvalue()  # the rollup job has not run yet
    out = io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("reconcile_spend", "--check", stdout=out)
    text = out.getvalue()
    assert exited.value.code == 1
    assert "No drift in 1 counter(s)." in text
    assert "OVER LIMIT: hard budget spent 0.0200000000 of 0.0100000000 (0.0100000000 over)" in text
    assert "1 hard budget(s) over their limit." in text
    assert counter(budget).spent == Decimal("0.02")


# --------------------------------------------------------------------------- Redis loss while another process restores


def test_lost_counters_refuse_while_another_process_holds_the_restore(world, store, settings):
    """Redis lost its counters and another process took the restore lock but never finishes:
    admissions do not guess, they refuse (or serve without a hold when the organization fails open)."""
    import redis

    from budgets.conf import budget_settings
    from tests.budgets.helpers import REDIS_URL, redis_flush

    if store != "redis":
        pytest.skip("only Redis can lose its counters")
    settings.GATEHOUSE_BUDGETS = {**settings.GATEHOUSE_BUDGETS, "RESTORE_WAIT": 0.2}
    harness().rebuild()
    services.budget_create(organization=world.org, scope="key", scope_id=world.key.id, amount="1")
    refresh()
    assert admit(world, cost="0.01").ok
    prefix = budget_settings().redis_prefix
    redis_flush(REDIS_URL, prefix)
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.set(prefix + "restoring", "another-process", ex=30)
        with pytest.raises(BudgetUnavailable) as caught:
            admit(world, cost="0.01")
        assert caught.value.store == "redis" and "restor" in caught.value.detail
        services.budget_policy_set(organization=world.org, on_store_failure="open")
        refresh()
        assert admit(world, cost="0.01").degraded
        client.delete(prefix + "restoring")  # that process died; its lock is gone
        services.budget_policy_set(organization=world.org, on_store_failure="closed")
        refresh()
        restored = admit(world, cost="0.01")
        assert restored.ok and not restored.degraded
        assert client.exists(prefix + "epoch")
    finally:
        client.close()
