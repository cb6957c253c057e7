"""Budgets through the real gateway: 429 `budget_exceeded` naming scope and reset,
holds replaced by the real cost on success, streams and disconnects, released on
failure, and the OpenAI SDK told not to retry."""

# ruff: noqa: F811 - the fixtures are imported from tests.budgets.helpers

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import httpx
import openai
import pytest

from budgets import services
from budgets.models import BudgetHold, HoldStatus, UsageRecord
from budgets.reconcile import reconcile
from tests.budgets.helpers import (  # noqa: F401 - fixtures
    PROMPT,
    budget_sync,
    clean_budget_state,
    priced_model,
    settled,
    store,
    wait_until,
    worst_case_usd,
)
from tests.conftest import server_gateway, usage_wait


def chat(demo, model, *, max_tokens=20, stream=False, key=None, timeout=15, **extra):
    body = {"model": model, "messages": PROMPT, "max_tokens": max_tokens, "stream": stream, **extra}
    return httpx.post(
        demo.base_url + "/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {key or demo.secret}"},
        timeout=timeout,
    )


@pytest.fixture
def model(demo):
    card, _ = priced_model()
    return card.name


def test_overrunning_request_gets_429_budget_exceeded_naming_scope_and_reset(demo, store, model):
    services.budget_create(organization=demo.org, scope="team", scope_id=demo.team.id, amount="0.001")
    budget_sync()
    response = chat(demo, model, max_tokens=100)  # worst case 0.00308 > 0.001
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert error["code"] == "budget_exceeded" and error["type"] == "insufficient_quota"
    assert "team 'Research'" in error["message"] and "resets at" in error["message"]
    assert response.headers["x-gatehouse-budget-scope"] == "team"
    assert response.headers["x-gatehouse-budget-reset"]
    assert int(response.headers["retry-after"]) > 0
    assert response.headers["x-should-retry"] == "false"
    record = usage_wait(response.headers["x-request-id"])
    assert record.status_code == 429 and record.error_code == "budget_exceeded" and record.cost == 0
    # A smaller worst case fits.
    assert chat(demo, model, max_tokens=20).status_code == 200


def test_success_books_the_real_cost_exactly(demo, store, model):
    budget = services.budget_create(organization=demo.org, scope="key", scope_id=demo.key.id, amount="1")
    budget_sync()
    ids = []

    def call(max_tokens: int) -> None:
        response = chat(demo, model, max_tokens=max_tokens)
        assert response.status_code == 200
        ids.append(response.headers["x-request-id"])

    # The first request is decided on its own (its hold booked with its cost). Once that
    # booking has told the process how far the budget is from its limit, the next ones run
    # within a lease, booked once they have settled.
    call(5)
    (hold,) = wait_until(lambda: list(BudgetHold.objects.filter(request_id=ids[0], status=HoldStatus.SETTLED)))
    call(20)
    call(50)
    costs = [usage_wait(request_id).cost for request_id in ids]
    row = settled(budget, spent=sum(costs, Decimal(0)))
    assert row.spent == worst_case_usd(max_tokens=5) + worst_case_usd(max_tokens=20) + worst_case_usd(max_tokens=50)
    assert hold.actual_units == int(costs[0] * 10**10)
    server_gateway().call_soon(lambda: _retire_leases(server_gateway()))
    # (One lease, or two when the first turned a second old between the requests.)
    leases = wait_until(
        lambda: (
            list(BudgetHold.objects.filter(request_id__startswith="lease:", status=HoldStatus.SETTLED))
            if not BudgetHold.objects.filter(request_id__startswith="lease:", status=HoldStatus.HELD).exists()
            else None
        )
    )
    members = [m for lease in leases for m in lease.members]
    # The second request may still come a moment before the first one's booking reached the
    # process (the hold row is written first) and be decided on its own; the third cannot.
    alone = list(BudgetHold.objects.filter(request_id__in=ids[1:], status=HoldStatus.SETTLED))
    assert ids[2] in members
    assert sorted(members + [h.request_id for h in alone]) == sorted(ids[1:])
    assert sum(lease.actual_units for lease in leases) + sum(h.actual_units for h in alone) == int(
        (costs[1] + costs[2]) * 10**10
    )
    assert not BudgetHold.objects.filter(request_id__in=ids[1:]).exclude(status=HoldStatus.SETTLED).exists()
    (check,) = reconcile(budget_id=budget.id, rollup=True)
    assert check.ok and check.ledger_requests == 3, check.drift


async def _retire_leases(gateway) -> None:
    gateway.budgets.leases.retire_all()
    await gateway.budgets.tick()


def test_streams_settle_at_their_end_with_the_tokens_really_used(demo, store, model):
    budget = services.budget_create(organization=demo.org, scope="user", scope_id=demo.owner.id, amount="1")
    budget_sync()
    with httpx.stream(
        "POST",
        demo.base_url + "/chat/completions",
        json={"model": model, "messages": PROMPT, "max_tokens": 30, "stream": True},
        headers={"authorization": f"Bearer {demo.secret}"},
        timeout=15,
    ) as response:
        assert response.status_code == 200
        body = b"".join(response.iter_bytes())
        request_id = response.headers["x-request-id"]
    assert body.endswith(b"data: [DONE]\n\n")
    record = usage_wait(request_id)
    assert record.cost > 0 and record.output_tokens == 30
    assert settled(budget, spent=record.cost).spent == worst_case_usd(max_tokens=30)


def test_client_disconnect_mid_stream_settles_what_was_used(demo, store):
    slow, _ = priced_model(suffix="-slow", output_tokens=400, extra_headers={"x-sim-latency-scale": "1"})
    budget = services.budget_create(organization=demo.org, scope="organization", scope_id=demo.org.id, amount="1")
    budget_sync()

    async def read_a_little() -> str:
        async with (
            httpx.AsyncClient(timeout=15) as client,
            client.stream(
                "POST",
                demo.base_url + "/chat/completions",
                json={"model": slow.name, "messages": PROMPT, "max_tokens": 400, "stream": True},
                headers={"authorization": f"Bearer {demo.secret}"},
            ) as response,
        ):
            async for _ in response.aiter_bytes():
                break  # the first chunk, then hang up
            return response.headers["x-request-id"]

    request_id = asyncio.run(read_a_little())
    record = usage_wait(request_id)
    assert record.status_code == 499
    assert 0 < record.output_tokens < 400 and record.cost > 0
    row = settled(budget, spent=record.cost)
    assert row.spent < worst_case_usd(max_tokens=400)
    hold = BudgetHold.objects.get(request_id=request_id)
    assert hold.status == HoldStatus.SETTLED and hold.actual_units == int(record.cost * 10**10)


def test_upstream_failure_releases_the_hold(demo, store):
    broken, _ = priced_model(suffix="-broken", extra_headers={"x-sim-fault": "500"})
    budget = services.budget_create(organization=demo.org, scope="key", scope_id=demo.key.id, amount="0.01")
    budget_sync()
    ids = []
    for _ in range(12):  # more failures than the budget could hold at once
        response = chat(demo, broken.name, max_tokens=100)
        assert response.status_code in (500, 502, 503), response.text  # 503 once the breaker opens
        ids.append(response.headers["x-request-id"])
    row = settled(budget, spent=Decimal(0))
    assert row.spent == 0
    statuses = wait_until(
        lambda: set(BudgetHold.objects.filter(request_id__in=ids).values_list("status", flat=True)) == {"released"}
    )
    assert statuses


def test_openai_sdk_gets_a_rate_limit_error_and_does_not_retry(demo, store, model):
    services.budget_create(organization=demo.org, scope="key", scope_id=demo.key.id, amount="0")
    budget_sync()
    client = openai.OpenAI(base_url=demo.base_url, api_key=demo.secret, max_retries=3)
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.with_raw_response.create(model=model, messages=PROMPT, max_tokens=5)
    assert caught.value.code == "budget_exceeded"
    usage_wait(caught.value.response.headers["x-request-id"])
    time.sleep(0.3)
    # One request reached the gateway: the SDK honoured x-should-retry instead of retrying three times.
    assert UsageRecord.objects.filter(key_id=demo.key.id, status_code=429).count() == 1


def test_soft_budget_allows_and_counts(demo, store, model):
    budget = services.budget_create(
        organization=demo.org, scope="team", scope_id=demo.team.id, amount="0.0001", hard=False
    )
    budget_sync()
    responses = [chat(demo, model, max_tokens=20) for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 200]
    row = settled(budget, spent=3 * worst_case_usd(max_tokens=20))
    assert row.spent > row.budget.amount
