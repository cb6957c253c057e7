"""Budget test helpers and fixtures, shared by tests/budgets and the gateway tests: an
organization built through the services, a clean budget state per test, and the two
counter stores (database, and Redis when REDIS_URL is set)."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import pytest

REDIS_URL = os.environ.get("REDIS_URL", "")


def redis_flush(url: str, prefix: str) -> None:
    """Delete this test session's keys (and only those)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


class TestClock:
    """The wall clock until frozen; `frozen(at)` stops it, `advance` moves it (tests only)."""

    def __init__(self) -> None:
        self._frozen: datetime | None = None

    def now(self) -> datetime:
        from datetime import UTC

        return self._frozen if self._frozen is not None else datetime.now(UTC)

    @contextmanager
    def frozen(self, at: datetime) -> Iterator[TestClock]:
        if at.tzinfo is None:
            raise ValueError("freeze the clock at an aware datetime")
        previous, self._frozen = self._frozen, at
        try:
            yield self
        finally:
            self._frozen = previous

    def advance(self, delta) -> datetime:
        if self._frozen is None:
            raise RuntimeError("only a frozen clock can be moved")
        self._frozen += delta
        return self._frozen


clock = TestClock()


class LoopThread:
    """One event loop in a thread of its own, as a gateway process has: the owner under test
    lives on it, and tests run coroutines there."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro, timeout: float = 30.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()


class Harness:
    """The `Budgets` owner of a test, built on first use (after the test set its settings)."""

    def __init__(self) -> None:
        self.runner: LoopThread | None = None
        self.owner = None

    def budgets(self):
        from budgets.runtime import Budgets

        if self.owner is None:
            self.runner = self.runner or LoopThread()
            self.owner = Budgets(clock=clock)
            self.run(self.owner.start())
        return self.owner

    def run(self, coro):
        self.runner = self.runner or LoopThread()
        return self.runner.run(coro)

    def rebuild(self) -> None:
        """Settings changed: a new owner."""
        self.close(keep_loop=True)

    def close(self, *, keep_loop: bool = False) -> None:
        if self.owner is not None:
            with contextlib.suppress(Exception):  # a test that broke a store leaves it broken
                self.run(self.owner.stop())
            self.owner = None
        if self.runner is not None and not keep_loop:
            self.runner.close()
            self.runner = None


HARNESSES: list[Harness] = []  # the current test's harness (tests only)


def harness() -> Harness:
    return HARNESSES[-1]


def budgets():
    """The `Budgets` owner of the running test."""
    return harness().budgets()


def run(coro):
    """Run a coroutine on the owner's loop."""
    return harness().run(coro)


def budget_state_reset() -> None:
    """Forget what the test server's gateway keeps in memory about budgets and limits."""
    from tests.conftest import server_gateway

    gateway = server_gateway()
    if gateway is not None:
        gateway.budgets.reset()


@pytest.fixture(autouse=True)
def clean_budget_state():
    budget_state_reset()
    current = Harness()
    HARNESSES.append(current)
    yield current
    current.close()
    HARNESSES.remove(current)
    budget_state_reset()


@pytest.fixture(params=["db", "redis"])
def store(request, settings):
    """Run the test on the database counters and on Redis (skipped without REDIS_URL)."""
    from budgets.conf import budget_settings

    if request.param == "redis" and not REDIS_URL:
        pytest.skip("REDIS_URL is not set")
    settings.GATEHOUSE_BUDGETS = {
        **settings.GATEHOUSE_BUDGETS,
        "REDIS_URL": REDIS_URL if request.param == "redis" else "",
    }
    if HARNESSES:
        harness().rebuild()
    if request.param == "redis":
        redis_flush(REDIS_URL, budget_settings().redis_prefix)
    yield request.param
    if HARNESSES:
        harness().close(keep_loop=True)
    if request.param == "redis":
        redis_flush(REDIS_URL, budget_settings().redis_prefix)


@dataclass
class World:
    org: object
    owner: object
    member: object
    team: object
    key: object
    other_key: object


@pytest.fixture
def world(db) -> World:
    from console import services

    owner = services.user_create(username="owner-b", email="owner@b.test")
    member = services.user_create(username="member-b", email="member@b.test")
    org = services.organization_create(name="Budget Org", slug="budget-org", owner=owner)
    services.membership_set(organization=org, user=member, role="member", actor=owner)
    team = services.team_create(organization=org, name="Research", actor=owner)
    services.team_member_add(team=team, user=member, actor=owner)
    key = services.api_key_create(organization=org, name="app", team=team, user=member, actor=owner).key
    other = services.api_key_create(organization=org, name="other app", team=team, user=owner, actor=owner).key
    return World(org=org, owner=owner, member=member, team=team, key=key, other_key=other)


def admit(
    world: World,
    *,
    cost: str = "0.01",
    tokens: int = 100,
    at: datetime | None = None,
    key=None,
    request_id: str | None = None,
):
    key = key or world.key
    owner = budgets()
    return run(
        owner.admit(
            request_id=request_id or f"req_{uuid.uuid4().hex}",
            organization_id=world.org.id,
            team_id=key.team_id,
            user_id=key.user_id,
            key_id=key.id,
            at=at or clock.now(),
            cost=Decimal(cost),
            tokens=tokens,
        )
    )


def settle(admission, *, cost: str = "0", tokens: int = 0, failed: bool = False) -> None:
    """Settle, and wait until the settlement is booked (as the gateway does a moment later)."""
    owner = budgets()
    owner.settle(admission=admission, cost=Decimal(cost), tokens=tokens, failed=failed)
    run(owner.drain())


def tick() -> None:
    """One background tick: settle what is queued, renew, write ledger and mirror, reap."""
    run(budgets().tick(force_reap=True))


def refresh() -> None:
    """The owner under test sees the definitions as they are now."""
    budgets().snapshot_refresh()


# --------------------------------------------------------------------------- gateway helpers

PRICED_MODEL = "budget-test-model"
PROMPT = [{"role": "user", "content": "hi"}]


def budget_sync() -> None:
    """Make the gateway see the budget definitions as they are now (instead of its poll)."""
    from tests.conftest import server_gateway

    gateway = server_gateway()
    if gateway is not None:
        # A new engine when the test switched the store (database or Redis), else new definitions.
        gateway.call_soon(gateway.budgets_reload, timeout=30)


def priced_model(
    *,
    suffix: str = "",
    output_tokens: int = 1000,
    extra_headers: dict | None = None,
    organization=None,
    price_in: str = "10",
    price_out: str = "30",
):
    """A model on its own simulator provider that always answers `output_tokens` (capped by max_tokens)."""
    from providers import services as provider_services
    from tests.conftest import gateway_sync

    headers = {"x-sim-latency-scale": "0", "x-sim-output-tokens": str(output_tokens), **(extra_headers or {})}
    provider = provider_services.provider_create(
        name=f"sim-budget{suffix}",
        kind="openai",
        base_url="sim://openai/v1",
        secret="sim",
        extra_headers=headers,
        organization=organization,
    )
    card, _ = provider_services.model_card_upsert(
        name=PRICED_MODEL + suffix,
        vendor="openai",
        input_price=Decimal(price_in),
        output_price=Decimal(price_out),
        cached_input_price=Decimal(price_in),
        capabilities=["chat", "streaming"],
        max_output_tokens=1000,
    )
    deployment = provider_services.deployment_create(model=card, provider=provider, name=f"{card.name}@sim")
    gateway_sync()
    return card, deployment


def worst_case_usd(*, max_tokens: int, messages=PROMPT, price_in: str = "10", price_out: str = "30") -> Decimal:
    from budgets.pricing import cost_of
    from providers.tokens import estimate_prompt_tokens

    return cost_of(
        input_tokens=estimate_prompt_tokens(messages),
        output_tokens=max_tokens,
        cached_tokens=0,
        input_price=Decimal(price_in),
        output_price=Decimal(price_out),
        cached_input_price=Decimal(price_in),
    ).total


def counters_of(budget) -> list:
    """The budget's counter rows, once the store has caught up (Redis mode mirrors on its tick)."""
    from budgets.models import BudgetCounter

    return list(BudgetCounter.objects.filter(budget=budget).order_by("period_start"))


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05):
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


def settled(budget, *, spent=None, timeout: float = 10.0):
    """The current counter once no hold is open on it (and its spend is `spent`, when given)."""
    from budgets.models import BudgetHold, HoldStatus

    def ready():
        rows = counters_of(budget)
        if not rows or rows[-1].held_units != 0:
            return None
        if spent is not None and rows[-1].spent != spent:
            return None
        if BudgetHold.objects.filter(status=HoldStatus.HELD, organization_id=budget.organization_id).exists():
            return None
        return rows[-1]

    return wait_until(ready, timeout=timeout)


@contextlib.contextmanager
def database_unreachable():
    """A real connection failure: the default connection points at a database that does not exist."""
    from django.db import connections

    conn = connections["default"]
    saved = copy.deepcopy(conn.settings_dict)
    conn.close()
    if conn.vendor == "sqlite":
        conn.settings_dict["NAME"] = "/nonexistent-dir/nowhere.sqlite3"
    else:
        conn.close_pool()
        conn.settings_dict["PORT"] = "1"
        conn.settings_dict["OPTIONS"].get("pool", {})["timeout"] = 0.5
    try:
        yield
    finally:
        conn.close()
        if conn.vendor == "postgresql":
            conn.close_pool()
        conn.settings_dict.clear()
        conn.settings_dict.update(saved)
