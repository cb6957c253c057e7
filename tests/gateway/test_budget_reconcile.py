"""After mixed traffic — answers, streams, failures, disconnects, fallbacks,
refusals and embeddings — counters, the hold ledger, usage records and rollups
agree to the last 1e-10 USD: `reconcile_spend` finds zero drift."""

# ruff: noqa: F811 - the fixtures are imported from tests.budgets.helpers

from __future__ import annotations

import asyncio
import io
from decimal import Decimal

import httpx
from django.core.management import call_command

from budgets import services
from budgets.models import BudgetHold, HoldStatus, UsageRecord
from budgets.reconcile import reconcile
from budgets.rollups import usage_rollup
from providers import services as provider_services
from providers.models import ModelCard
from tests.budgets.helpers import (  # noqa: F401 - fixtures
    PROMPT,
    budget_sync,
    clean_budget_state,
    priced_model,
    store,
    wait_until,
)
from tests.conftest import gateway_sync


def post(demo, path, body, key=None):
    return httpx.post(
        demo.base_url + path, json=body, headers={"authorization": f"Bearer {key or demo.secret}"}, timeout=20
    )


async def disconnect_mid_stream(demo, model: str) -> str:
    async with (
        httpx.AsyncClient(timeout=15) as client,
        client.stream(
            "POST",
            demo.base_url + "/chat/completions",
            json={"model": model, "messages": PROMPT, "max_tokens": 300, "stream": True},
            headers={"authorization": f"Bearer {demo.secret}"},
        ) as response,
    ):
        async for _ in response.aiter_bytes():
            break
        return response.headers["x-request-id"]


def test_mixed_traffic_leaves_zero_drift(demo, store):
    from console.services import api_key_create

    fast, _ = priced_model()
    slow, _ = priced_model(suffix="-slow", output_tokens=300, extra_headers={"x-sim-latency-scale": "1"})
    broken, _ = priced_model(suffix="-broken", extra_headers={"x-sim-fault": "500"})
    flaky, _ = priced_model(suffix="-flaky", extra_headers={"x-sim-fault": "502", "x-sim-fault-rate": "0.5"})
    second = provider_services.provider_create(
        name="sim-budget-fallback",
        kind="openai",
        base_url="sim://openai/v1",
        secret="sim",
        extra_headers={"x-sim-latency-scale": "0"},
    )
    provider_services.deployment_create(
        model=ModelCard.objects.get(name=flaky.name), provider=second, name=f"{flaky.name}@fallback"
    )
    gateway_sync()
    tight = api_key_create(organization=demo.org, name="tight app", team=demo.team, user=demo.owner, actor=demo.owner)
    budgets = [
        services.budget_create(organization=demo.org, scope="organization", scope_id=demo.org.id, amount="10"),
        services.budget_create(organization=demo.org, scope="team", scope_id=demo.team.id, amount="5", period="daily"),
        services.budget_create(
            organization=demo.org, scope="user", scope_id=demo.owner.id, amount="5", period="weekly"
        ),
        services.budget_create(
            organization=demo.org, scope="key", scope_id=demo.key.id, amount="3", period="lifetime", hard=False
        ),
        services.budget_create(organization=demo.org, scope="key", scope_id=tight.key.id, amount="0.002"),
    ]
    budget_sync()
    statuses = []
    for max_tokens in (10, 20, 40):
        statuses.append(
            post(
                demo, "/chat/completions", {"model": fast.name, "messages": PROMPT, "max_tokens": max_tokens}
            ).status_code
        )
        statuses.append(
            post(
                demo,
                "/chat/completions",
                {
                    "model": fast.name,
                    "messages": PROMPT,
                    "max_tokens": max_tokens,
                    "stream": True,
                    "stream_options": {"include_usage": max_tokens > 10},
                },
            ).status_code
        )
    for _ in range(3):
        statuses.append(post(demo, "/chat/completions", {"model": broken.name, "messages": PROMPT}).status_code)
    for _ in range(6):
        statuses.append(
            post(demo, "/chat/completions", {"model": flaky.name, "messages": PROMPT, "max_tokens": 30}).status_code
        )
    statuses.append(post(demo, "/embeddings", {"model": "text-embedding-3-small", "input": ["a", "bc"]}).status_code)
    for _ in range(3):  # the tight key: the first fits, then budget_exceeded
        statuses.append(
            post(
                demo, "/chat/completions", {"model": fast.name, "messages": PROMPT, "max_tokens": 40}, key=tight.secret
            ).status_code
        )
    disconnected = asyncio.run(disconnect_mid_stream(demo, slow.name))
    assert 200 in statuses and 429 in statuses and any(s >= 500 for s in statuses)
    # Everything settled and written.
    wait_until(lambda: UsageRecord.objects.filter(request_id=disconnected).exists())
    wait_until(lambda: not BudgetHold.objects.filter(organization_id=demo.org.id, status=HoldStatus.HELD).exists())
    assert UsageRecord.objects.filter(request_id=disconnected, status_code=499, cost__gt=0).exists()

    def drift() -> list:
        usage_rollup()  # the hourly job, brought up to date
        return [(c.budget.name, c.drift) for c in reconcile(organization_id=demo.org.id) if c.drift]

    try:
        wait_until(lambda: not drift(), timeout=10)
    except AssertionError:
        raise AssertionError(drift()) from None

    checks = reconcile(organization_id=demo.org.id)
    assert len(checks) == len(budgets)
    for check in checks:
        assert check.drift == [], (check.budget.name, check.drift)
        assert check.counter_held == 0 and check.unbudgeted == 0
    by_scope = {check.budget.scope_id: check for check in checks if check.budget.scope == "organization"}
    org_check = by_scope[demo.org.id]
    total = sum((r.cost for r in UsageRecord.objects.filter(organization_id=demo.org.id)), Decimal(0))
    assert org_check.counter_spent == org_check.records == org_check.scope_records == org_check.rollups
    assert org_check.counter_spent == int(total * 10**10) > 0
    assert org_check.ledger_requests >= 15

    out = io.StringIO()
    call_command("reconcile_spend", "--org", demo.org.slug, "--check", stdout=out)
    assert "No drift in 5 counter(s)." in out.getvalue()


def test_reconcile_reports_drift_when_a_counter_disagrees(demo, store):
    from budgets.models import BudgetCounter

    fast, _ = priced_model()
    budget = services.budget_create(organization=demo.org, scope="key", scope_id=demo.key.id, amount="1")
    budget_sync()
    response = post(demo, "/chat/completions", {"model": fast.name, "messages": PROMPT, "max_tokens": 10})
    assert response.status_code == 200
    wait_until(lambda: BudgetHold.objects.filter(organization_id=demo.org.id, status=HoldStatus.SETTLED).exists())
    wait_until(lambda: reconcile(organization_id=demo.org.id)[0].counter_spent > 0)
    if store == "redis":
        import redis

        from budgets.conf import budget_settings

        client = redis.Redis.from_url(budget_settings().redis_url)
        client.hincrby(f"{budget_settings().redis_prefix}c:{budget.counters.get().ident}", "spent", 7)
        client.close()
    else:
        BudgetCounter.objects.filter(budget=budget).update(spent_units=1)
    out = io.StringIO()
    try:
        call_command("reconcile_spend", "--org", demo.org.slug, "--check", stdout=out)
    except SystemExit as exit:
        assert exit.code == 1
    else:
        raise AssertionError("no drift reported")
    assert "DRIFT: counter spent" in out.getvalue()
