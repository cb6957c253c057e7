"""Routing savings: the baseline is the priciest model each route could reach in the live
routing policy (targets, fallbacks, cascade layers), unless the organization sets one."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest

from tests.budgets.finops_data import seed_small

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def finance(world):
    from console import services as console_services

    user = console_services.user_create(username="fin-r", email="fin@r.test")
    console_services.membership_set(organization=world.org, user=user, role="finance", actor=world.owner)
    return user


def live_policy(world, routes):
    from routing import services as routing_services
    from routing.policy.document import policy_empty

    document = policy_empty()
    document["routes"] = routes
    return routing_services.policy_propose(organization=world.org, actor=world.owner, document=document)


def priced(name: str, price_in: str, price_out: str):
    from providers import services as provider_services

    card, _ = provider_services.model_card_upsert(
        name=name, vendor="openai", input_price=Decimal(price_in), output_price=Decimal(price_out)
    )
    return card


def routes_csv(client) -> dict[str, dict]:
    response = client.get("/finops/savings/", {"period": "90d", "format": "csv", "table": "routes"})
    return {row["Route"]: row for row in csv.DictReader(io.StringIO(response.content.decode()))}


ROUTES = [
    {
        "name": "support",
        "targets": [{"model": "reach-mini"}],
        "fallbacks": [{"route": "premium"}],
    },
    {"name": "premium", "targets": [{"model": "reach-premium"}]},
    {"name": "tiered", "kind": "cascade", "layers": [{"model": "reach-mini"}, {"route": "deep"}]},
    {"name": "deep", "targets": [{"model": "reach-deep"}]},
]


def test_route_reach_follows_targets_fallbacks_and_cascade_layers(world):
    from routing.selectors import route_reachable_models

    for name, price in (("reach-mini", "0.1"), ("reach-premium", "10"), ("reach-deep", "20")):
        priced(name, price, price)
    live_policy(world, ROUTES)
    reach = route_reachable_models(organization_id=world.org.id)
    assert reach["support"] == ["reach-mini", "reach-premium"]
    assert reach["premium"] == ["reach-premium"]
    assert reach["tiered"] == ["reach-deep", "reach-mini"]
    assert route_reachable_models(organization_id=world.org.id + 999) == {}


def test_savings_baseline_is_the_priciest_model_the_route_could_reach(client, world, finance):
    seed_small(world)  # 120 requests on route "support" over 40 days: gpt-4o, gpt-4o-mini, llama-3-8b
    client.force_login(finance)
    before = routes_csv(client)["support"]
    assert (before["Baseline model"], before["Baseline from"]) == ("gpt-4o", "used by the route")

    priced("reach-mini", "0.1", "0.4")
    priced("reach-premium", "10", "40")  # reachable only through the fallback route
    priced("reach-deep", "20", "80")  # on another route: not reachable from support
    live_policy(world, ROUTES)
    support = routes_csv(client)["support"]
    assert (support["Baseline model"], support["Baseline from"]) == ("reach-premium", "reachable by the route")
    # 120 requests of 1000 in / 200 out at 10 / 40 per 1M
    assert Decimal(support["On the baseline"]) == Decimal("2.16")
    assert Decimal(support["Saved"]) == Decimal("2.16") - Decimal(support["Actual"])
    html = client.get("/finops/savings/", {"period": "90d"}).content.decode()
    assert "current</strong> live routing policy" in html

    # The organization's setting (On-prem page's form) wins over the policy.
    form = {
        "baseline_model": "gpt-4o",
        "gpus": "8",
        "gpu_hourly_price": "2.5",
        "utilization": "60",
        "tokens_per_gpu_second": "2500",
        "operations_monthly": "15000",
        "setup_cost": "50000",
    }
    assert client.post("/finops/on-prem/", form).status_code == 302
    support = routes_csv(client)["support"]
    assert (support["Baseline model"], support["Baseline from"]) == ("gpt-4o", "organization setting")
    assert Decimal(support["On the baseline"]) == Decimal("0.54")
