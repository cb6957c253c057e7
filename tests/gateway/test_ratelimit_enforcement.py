"""Rate limits through the real gateway: requests and tokens per minute per key,
user and team, and per deployment; 429 with Retry-After and OpenAI's
x-ratelimit-* headers, which successful responses carry too."""

# ruff: noqa: F811 - the fixtures are imported from tests.budgets.helpers

from __future__ import annotations

import httpx
import pytest

from budgets import services
from tests.budgets.helpers import PROMPT, budget_sync, clean_budget_state, priced_model, store  # noqa: F401


def chat(demo, model, *, max_tokens=20, key=None):
    return httpx.post(
        demo.base_url + "/chat/completions",
        json={"model": model, "messages": PROMPT, "max_tokens": max_tokens},
        headers={"authorization": f"Bearer {key or demo.secret}"},
        timeout=15,
    )


@pytest.fixture
def model(demo):
    card, deployment = priced_model()
    return card.name


def test_requests_per_minute_per_key_is_429_with_retry_after_and_openai_headers(demo, store, model):
    services.rate_limit_set(organization=demo.org, scope="key", scope_id=demo.key.id, rpm=3)
    budget_sync()
    ok = [chat(demo, model) for _ in range(3)]
    assert [r.status_code for r in ok] == [200, 200, 200]
    assert ok[0].headers["x-ratelimit-limit-requests"] == "3"
    assert ok[0].headers["x-ratelimit-remaining-requests"] == "2"
    assert ok[2].headers["x-ratelimit-remaining-requests"] == "0"
    assert ok[2].headers["x-ratelimit-reset-requests"].endswith("s")
    refused = chat(demo, model)
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["code"] == "rate_limit_exceeded" and error["type"] == "requests"
    assert "RPM" in error["message"] and "key 'demo app'" in error["message"]
    assert 1 <= int(refused.headers["retry-after"]) <= 20
    assert refused.headers["x-ratelimit-limit-requests"] == "3"
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"


def test_tokens_per_minute_per_team_counts_max_tokens_up_front(demo, store, model):
    services.rate_limit_set(organization=demo.org, scope="team", scope_id=demo.team.id, tpm=300)
    budget_sync()
    first = chat(demo, model, max_tokens=200)
    assert first.status_code == 200
    assert first.headers["x-ratelimit-limit-tokens"] == "300"
    # 208 estimated were charged, then trued up to the 208 really used.
    refused = chat(demo, model, max_tokens=200)
    assert refused.status_code == 429
    assert refused.json()["error"]["type"] == "tokens"
    assert int(refused.headers["retry-after"]) >= 1
    assert chat(demo, model, max_tokens=50).status_code == 200


def test_user_limit_covers_all_of_the_users_keys(demo, store, model):
    from console.services import api_key_create

    second = api_key_create(organization=demo.org, name="second app", user=demo.owner, actor=demo.owner).secret
    services.rate_limit_set(organization=demo.org, scope="user", scope_id=demo.owner.id, rpm=2)
    budget_sync()
    from tests.conftest import gateway_sync

    gateway_sync()
    assert chat(demo, model).status_code == 200
    assert chat(demo, model, key=second).status_code == 200
    assert chat(demo, model, key=second).status_code == 429


def test_deployment_limit_keeps_traffic_under_the_provider_limit(demo, store, model):
    from budgets.models import RateLimit
    from providers.models import Deployment

    deployment = Deployment.objects.get(model__name=model)
    # A shared deployment's limit is the operator's: set through the service without an organization.
    services.rate_limit_set(organization=None, scope="deployment", scope_id=deployment.id, rpm=2)
    assert RateLimit.objects.get(scope="deployment").organization_id is None
    budget_sync()
    assert [chat(demo, model).status_code for _ in range(2)] == [200, 200]
    refused = chat(demo, model)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert "deployment" in refused.json()["error"]["message"]
    assert int(refused.headers["retry-after"]) >= 1


def test_a_second_deployment_takes_over_when_the_first_is_at_its_limit(demo, store, model):
    from providers import services as provider_services
    from providers.models import Deployment, ModelCard
    from tests.conftest import gateway_sync

    first = Deployment.objects.get(model__name=model)
    provider = provider_services.provider_create(
        name="sim-budget-second",
        kind="openai",
        base_url="sim://openai/v1",
        secret="sim",
        extra_headers={"x-sim-latency-scale": "0"},
    )
    second = provider_services.deployment_create(
        model=ModelCard.objects.get(name=model), provider=provider, name=f"{model}@second"
    )
    services.rate_limit_set(organization=None, scope="deployment", scope_id=first.id, rpm=1)
    services.rate_limit_set(organization=None, scope="deployment", scope_id=second.id, rpm=1)
    gateway_sync()
    budget_sync()
    used = [chat(demo, model) for _ in range(2)]
    assert [r.status_code for r in used] == [200, 200]
    assert {r.headers["x-gatehouse-deployment"] for r in used} == {first.name, second.name}
    assert chat(demo, model).status_code == 429


def test_a_deployment_limit_is_charged_to_the_deployment_that_answers(demo, store):
    """A deployment that fails without answering gets its request back: its limit counts
    only the requests it served, so it is tried again on the next request."""
    from tests.conftest import usage_wait
    from tests.routing.support import model_card, policy, reset_state, sim_deployment

    card = model_card("charged-model")
    failing = sim_deployment(card, "charged@failing", {"x-sim-fault": "500"})
    healthy = sim_deployment(card, "charged@healthy")
    reset_state(failing, healthy)
    policy(
        demo.org,
        demo.owner,
        routes=[
            {
                "name": "charged",
                "strategy": "round_robin",
                "targets": [{"deployment": failing.name}, {"deployment": healthy.name}],
            }
        ],
    )
    services.rate_limit_set(organization=None, scope="deployment", scope_id=failing.id, rpm=1)
    services.rate_limit_set(organization=None, scope="deployment", scope_id=healthy.id, rpm=100)
    budget_sync()
    tried_failing = 0
    for _ in range(4):
        response = chat(demo, "charged")
        assert response.status_code == 200, response.text
        trail = usage_wait(response.headers["x-request-id"]).metadata.get("attempt_trail", [])
        tried_failing += sum(1 for step in trail if step.get("deployment") == failing.name)
    # Round robin puts the failing deployment first every other request; with its one
    # request per minute given back after each failure, it is tried each time.
    assert tried_failing >= 2
