"""50 concurrent requests against a hard budget that fits 10: never more than the
budget (plus at most one request's estimate) is spent, and no request is refused
while room remains — in one gateway process (SQLite, or PostgreSQL when
DATABASE_URL is set), on Redis, and across two gateway processes sharing the
database or Redis."""

# ruff: noqa: F811 - the fixtures are imported from tests.budgets.helpers

from __future__ import annotations

import asyncio
import os
from collections import Counter
from decimal import Decimal

import httpx
import pytest

from budgets import services
from budgets.conf import budget_settings
from budgets.models import BudgetHold, HoldStatus
from tests.budgets.helpers import (  # noqa: F401 - fixtures
    PROMPT,
    budget_sync,
    clean_budget_state,
    priced_model,
    settled,
    store,
    worst_case_usd,
)
from tests.conftest import free_port

MAX_TOKENS = 40
CONCURRENCY = 50


async def burst(urls: list[str], secret: str, model: str, *, n: int = CONCURRENCY, max_tokens: int = MAX_TOKENS):
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:

        async def one(i: int) -> tuple[int, str]:
            response = await client.post(
                urls[i % len(urls)] + "/v1/chat/completions",
                json={"model": model, "messages": PROMPT, "max_tokens": max_tokens},
                headers={"authorization": f"Bearer {secret}"},
            )
            code = response.json()["error"]["code"] if response.status_code != 200 else ""
            return response.status_code, code

        return await asyncio.gather(*(one(i) for i in range(n)))


def assert_exactly_ten(results, budget) -> None:
    outcomes = Counter(results)
    # Each answer costs exactly its worst case, so the budget holds exactly ten:
    # fewer would be a false refusal, more an overrun.
    assert outcomes == {(200, ""): 10, (429, "budget_exceeded"): CONCURRENCY - 10}, outcomes
    row = settled(budget, spent=budget.amount, timeout=20)
    assert row.spent == budget.amount and row.held_units == 0
    holds = BudgetHold.objects.filter(organization_id=budget.organization_id)
    assert holds.filter(status=HoldStatus.SETTLED).count() == 10
    assert not holds.exclude(status=HoldStatus.SETTLED).exists()


def test_fifty_concurrent_requests_against_a_budget_for_ten(demo, store):
    card, _ = priced_model(output_tokens=10 * MAX_TOKENS, extra_headers={"x-sim-latency-scale": "0.2"})
    worst = worst_case_usd(max_tokens=MAX_TOKENS)
    budget = services.budget_create(organization=demo.org, scope="key", scope_id=demo.key.id, amount=worst * 10)
    budget_sync()
    origin = demo.base_url.removesuffix("/v1")
    results = asyncio.run(burst([origin], demo.secret, card.name))
    assert_exactly_ten(results, budget)


def test_cheaper_answers_leave_room_that_later_requests_get(demo, store):
    # Answers are shorter than max_tokens: settlement frees the difference.
    card, _ = priced_model(output_tokens=10, extra_headers={"x-sim-latency-scale": "0.2"})
    worst = worst_case_usd(max_tokens=MAX_TOKENS)
    budget = services.budget_create(organization=demo.org, scope="team", scope_id=demo.team.id, amount=worst * 10)
    budget_sync()
    origin = demo.base_url.removesuffix("/v1")
    results = asyncio.run(burst([origin], demo.secret, card.name))
    admitted = sum(1 for status, _ in results if status == 200)
    assert admitted >= 10
    assert {code for status, code in results if status != 200} <= {"budget_exceeded"}
    row = settled(budget, timeout=20)
    actual = worst_case_usd(max_tokens=10)
    assert row.spent == actual * admitted <= budget.amount + worst
    # No hold leaked: what is left admits exactly as many worst cases as fit.
    room = budget.amount - row.spent
    fits = int(room // worst)
    follow_up = asyncio.run(burst([origin], demo.secret, card.name, n=fits + 1))
    assert [s for s, _ in follow_up].count(200) >= fits


@pytest.mark.parametrize("mode", ["db", "redis"])
def test_two_gateway_processes_share_one_budget(demo, mode):
    from tests.gateway.test_processes import start_gateway

    if mode == "redis" and not os.environ.get("REDIS_URL"):
        pytest.skip("REDIS_URL is not set")
    card, _ = priced_model(output_tokens=10 * MAX_TOKENS, extra_headers={"x-sim-latency-scale": "0.2"})
    worst = worst_case_usd(max_tokens=MAX_TOKENS)
    budget = services.budget_create(
        organization=demo.org, scope="organization", scope_id=demo.org.id, amount=worst * 10
    )
    prefix = f"{budget_settings().redis_prefix}two-proc:"
    env = {"GATEHOUSE_REDIS_PREFIX": prefix, "GATEHOUSE_BUDGET_TICK": "0.1"}
    if mode == "db":
        env["REDIS_URL"] = ""
    ports = [free_port(), free_port()]
    servers = [start_gateway(port, **env) for port in ports]
    try:
        results = asyncio.run(burst([f"http://127.0.0.1:{p}" for p in ports], demo.secret, card.name))
        assert_exactly_ten(results, budget)
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=20)
        if mode == "redis":
            from tests.budgets.helpers import redis_flush

            redis_flush(os.environ["REDIS_URL"], prefix)
    assert budget.counters.get().spent == Decimal(budget.amount)


def test_rate_limits_are_shared_by_two_processes_through_redis(demo):
    from tests.gateway.test_processes import start_gateway

    if not os.environ.get("REDIS_URL"):
        pytest.skip("REDIS_URL is not set")
    card, _ = priced_model()
    services.rate_limit_set(organization=demo.org, scope="key", scope_id=demo.key.id, rpm=8)
    prefix = f"{budget_settings().redis_prefix}two-proc-rate:"
    ports = [free_port(), free_port()]
    servers = [start_gateway(port, GATEHOUSE_REDIS_PREFIX=prefix) for port in ports]
    try:
        results = asyncio.run(burst([f"http://127.0.0.1:{p}" for p in ports], demo.secret, card.name, n=20))
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=20)
        from tests.budgets.helpers import redis_flush

        redis_flush(os.environ["REDIS_URL"], prefix)
    # One limit for both processes: 8 answers, not 8 per process.
    assert Counter(results) == {(200, ""): 8, (429, "rate_limit_exceeded"): 12}, Counter(results)
