"""The catalog belongs to the operator; prices and visibility belong to each
organization — through /v1 against the simulator.

Org A is the demo organization; org B has its own key, its own provider, a
private model and a catalog model served only by its own provider.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import httpx
import pytest
from rest_framework.test import APIClient

from budgets.pricing import cost_of
from console import services as console_services
from console.models import Role
from providers import services as provider_services
from providers.models import ModelCard
from providers.services_org import organization_model_set, private_model_upsert
from tests.conftest import FAST, gateway_sync, usage_wait

HELLO = [{"role": "user", "content": "Say something short."}]


@dataclass
class OrgB:
    org: object
    secret: str


@pytest.fixture
def b(demo) -> OrgB:
    owner = console_services.user_create(username="owner-b", email="owner@b.test", password="pw-Owner-123")
    org = console_services.organization_create(name="Org B", slug="org-b", owner=owner)
    provider = provider_services.provider_create(
        name="sim-b",
        kind="openai",
        base_url="sim://openai/v1",
        secret="sim-secret",
        extra_headers=FAST,
        organization=org,
    )
    private, _ = private_model_upsert(
        organization=org, name="b-private-model", vendor="openai", input_price="1", output_price="2",
        capabilities=["chat", "streaming"],
    )  # fmt: skip
    provider_services.deployment_create(model=private, provider=provider)
    only_b, _ = provider_services.model_card_upsert(
        name="b-only-catalog-model", vendor="openai", input_price="1", output_price="2", capabilities=["chat"]
    )
    provider_services.deployment_create(model=only_b, provider=provider)
    # The demo's simulator providers are shared: org B reaches gpt-4o-mini through them too.
    secret = console_services.api_key_create(organization=org, name="b app", user=owner, actor=owner).secret
    gateway_sync()
    return OrgB(org=org, secret=secret)


def chat(demo, secret: str, model: str) -> httpx.Response:
    return httpx.post(
        demo.base_url + "/chat/completions",
        json={"model": model, "messages": HELLO, "max_tokens": 16},
        headers={"authorization": f"Bearer {secret}"},
        timeout=15,
    )


def admin_of(demo) -> APIClient:
    """An admin (not a platform operator) of org A, signed in to the management API."""
    admin = console_services.user_create(username="admin-a", email="admin@a.test", password="pw-Admin-123")
    console_services.membership_set(organization=demo.org, user=admin, role=Role.ADMIN, actor=demo.owner)
    client = APIClient()
    client.force_login(admin)
    client.credentials(HTTP_X_GATEHOUSE_ORGANIZATION=demo.org.slug)
    return client


def test_an_org_admin_cannot_zero_the_catalog_price_another_org_pays(demo, b):
    client = admin_of(demo)
    response = client.patch("/api/v1/models/gpt-4o-mini/", {"input_price": "0", "output_price": "0"}, format="json")
    assert response.status_code == 403, response.content
    card = ModelCard.objects.get(name="gpt-4o-mini", organization__isnull=True)
    assert card.input_price == Decimal("0.15") and card.output_price == Decimal("0.6")
    gateway_sync()
    answer = chat(demo, b.secret, "gpt-4o-mini")
    assert answer.status_code == 200, answer.text
    record = usage_wait(answer.headers["x-request-id"])
    assert record.organization_id == b.org.id and record.cost > 0
    assert record.input_price == Decimal("0.15")


def test_an_org_admin_cannot_retire_a_model_only_another_org_uses(demo, b):
    client = admin_of(demo)
    response = client.patch("/api/v1/models/b-only-catalog-model/", {"lifecycle": "retired"}, format="json")
    assert response.status_code == 403, response.content
    assert client.post("/api/v1/models/", {"name": "new-global", "vendor": "x"}, format="json").status_code == 403
    gateway_sync()
    assert chat(demo, b.secret, "b-only-catalog-model").status_code == 200


@pytest.mark.parametrize("model", ["b-private-model", "b-only-catalog-model"])
def test_a_model_of_another_organization_is_a_404_like_an_unknown_model(demo, b, model):
    unknown = chat(demo, demo.secret, "no-such-model-anywhere")
    foreign = chat(demo, demo.secret, model)
    assert unknown.status_code == foreign.status_code == 404, foreign.text
    unknown_error, foreign_error = unknown.json()["error"], foreign.json()["error"]
    assert foreign_error["code"] == unknown_error["code"] == "model_not_found"
    assert foreign_error["type"] == unknown_error["type"]
    assert foreign_error["message"] == unknown_error["message"].replace("no-such-model-anywhere", model)
    listed = httpx.get(demo.base_url + "/models", headers={"authorization": f"Bearer {demo.secret}"}).json()
    assert model not in {m["id"] for m in listed["data"]}
    detail = httpx.get(demo.base_url + f"/models/{model}", headers={"authorization": f"Bearer {demo.secret}"})
    assert detail.status_code == 404
    # Org B itself is served.
    assert chat(demo, b.secret, model).status_code == 200
    listed_b = httpx.get(demo.base_url + "/models", headers={"authorization": f"Bearer {b.secret}"}).json()
    assert model in {m["id"] for m in listed_b["data"]}


def test_contracted_prices_are_charged_and_records_keep_list_and_contracted_cost(demo, b):
    card = ModelCard.objects.get(name="gpt-4o-mini", organization__isnull=True)
    organization_model_set(
        organization=demo.org, model=card, input_price=Decimal("0.10"), output_price=Decimal("0.30"), note="MSA 2026"
    )
    gateway_sync()
    answer = chat(demo, demo.secret, "gpt-4o-mini")
    assert answer.status_code == 200, answer.text
    record = usage_wait(answer.headers["x-request-id"])
    assert (record.input_price, record.output_price) == (Decimal("0.10"), Decimal("0.30"))
    assert (record.list_input_price, record.list_output_price) == (Decimal("0.15"), Decimal("0.60"))
    tokens = {
        "input_tokens": record.input_tokens,
        "output_tokens": record.output_tokens,
        "cached_tokens": record.cached_tokens,
    }
    contracted = cost_of(
        **tokens, input_price=Decimal("0.10"), output_price=Decimal("0.30"), cached_input_price=card.cached_input_price
    )
    listed = cost_of(
        **tokens, input_price=Decimal("0.15"), output_price=Decimal("0.60"), cached_input_price=card.cached_input_price
    )
    assert record.input_tokens > 0 and record.output_tokens > 0
    assert record.cost == record.contracted_cost == contracted.total
    assert record.list_cost == listed.total and record.list_cost > record.cost
    assert (record.list_input_cost, record.list_output_cost) == (listed.input, listed.output)
    assert Decimal(answer.headers["x-gatehouse-cost"]) == record.cost

    # Org B has no contract: it pays the list price, and list and contracted cost agree.
    other = chat(demo, b.secret, "gpt-4o-mini")
    record_b = usage_wait(other.headers["x-request-id"])
    assert record_b.input_price == Decimal("0.15") and record_b.list_input_price == Decimal("0.15")
    assert record_b.cost == record_b.list_cost == record_b.contracted_cost


def test_a_model_hidden_or_retired_by_one_organization_is_404_for_it_alone(demo, b):
    claude = ModelCard.objects.get(name="claude-sonnet-4-6")
    gemini = ModelCard.objects.get(name="gemini-3.1-pro")
    organization_model_set(organization=demo.org, model=claude, visible=False)
    organization_model_set(organization=demo.org, model=gemini, lifecycle="retired")
    gateway_sync()
    for name in ("claude-sonnet-4-6", "gemini-3.1-pro"):
        response = chat(demo, demo.secret, name)
        assert response.status_code == 404 and response.json()["error"]["code"] == "model_not_found"
    # Org B sees both: they are shared deployments of catalog models.
    assert chat(demo, b.secret, "claude-sonnet-4-6").status_code == 200
    assert chat(demo, b.secret, "gemini-3.1-pro").status_code == 200
