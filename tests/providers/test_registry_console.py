"""The registry in the console: create, edit, lifecycle; vendors; deployment filters and pages."""

from __future__ import annotations

import pytest
from django.urls import reverse

from console import services as console_services
from providers import services
from providers.models import Deployment, ModelCard
from providers.selectors import model_list, vendor_list
from providers.snapshot import catalog_build


@pytest.fixture
def owner(db, client):
    user = console_services.user_create(username="reg-owner", password="pw-123456789")
    # The catalog is the platform operator's: this owner is also staff (see test_catalog_tenancy).
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    org = console_services.organization_create(name="Reg", slug="reg", owner=user)
    member = console_services.user_create(username="reg-dev", password="pw-123456789")
    console_services.membership_set(organization=org, user=member, role="member")
    client.force_login(user)
    return user


def card_form(**overrides):
    data = {
        "name": "acme-chat",
        "vendor": "Acme ",
        "tier": "mid",
        "lifecycle": "active",
        "context_window": "32000",
        "max_output_tokens": "4096",
        "input_price": "0.5",
        "output_price": "1.5",
        "cached_input_price": "0",
    }
    data.update(overrides)
    return data


def test_a_model_created_in_the_console_without_capabilities_chats_and_streams(client, owner):
    response = client.post(reverse("providers:model-create"), card_form())
    assert response.status_code == 302
    card = ModelCard.objects.get(name="acme-chat")
    assert card.vendor == "acme"
    assert sorted(card.capabilities) == ["chat", "streaming"]
    assert card.source == "manual"
    provider = services.provider_create(name="acme-up", kind="openai", base_url="https://acme.example/v1")
    services.deployment_create(model=card, provider=provider)
    assert catalog_build().model("acme-chat").capabilities == frozenset({"chat", "streaming"})


def test_the_model_form_reports_errors_inline(client, owner):
    services.model_card_upsert(name="taken", vendor="x")
    response = client.post(
        reverse("providers:model-create"),
        card_form(name="taken", input_price="-1", max_output_tokens="99999", context_window="1000"),
    )
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert "name" in errors and "input_price" in errors and "max_output_tokens" in errors
    assert not ModelCard.objects.filter(name="taken", vendor="acme").exists()


def test_editing_a_model_changes_prices_and_keeps_its_name(client, owner):
    card, _ = services.model_card_upsert(name="edit-me", vendor="acme", capabilities=["chat"])
    response = client.post(
        reverse("providers:model-edit", args=[card.pk]),
        card_form(name="renamed", input_price="0.25", capabilities=["chat", "tools"]),
    )
    assert response.status_code == 302
    card.refresh_from_db()
    assert card.name == "edit-me"
    assert str(card.input_price) == "0.250000" and card.capabilities == ["chat", "tools"]


def test_lifecycle_change_asks_first_then_applies(client, owner):
    card, _ = services.model_card_upsert(name="old-model", vendor="acme")
    url = reverse("providers:model-lifecycle", args=[card.pk])
    confirm = client.get(url, {"lifecycle": "retired"})
    assert confirm.status_code == 200 and b"Requests for old-model are refused" in confirm.content
    assert ModelCard.objects.get(pk=card.pk).lifecycle == "active"
    assert client.post(url, {"lifecycle": "retired"}).status_code == 302
    assert ModelCard.objects.get(pk=card.pk).lifecycle == "retired"
    assert "old-model" not in catalog_build().models


def test_members_cannot_create_or_edit_models(client, owner):
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.get(username="reg-dev"))
    assert client.get(reverse("providers:model-create")).status_code == 403
    assert b"Add model" not in client.get(reverse("providers:model-list")).content


@pytest.mark.django_db
def test_vendor_spellings_are_one_vendor():
    services.model_card_upsert(name="a1", vendor="Anthropic")
    services.model_card_upsert(name="a2", vendor="anthropic")
    # A card written before vendors were normalized.
    ModelCard.objects.create(name="a3", vendor="ANTHROPIC")
    vendors = [v for v in vendor_list() if v.vendor == "anthropic"]
    assert len(vendors) == 1 and vendors[0].models == 3
    assert {c.name for c in model_list(vendor="anthropic")} == {"a1", "a2", "a3"}


def test_deployments_are_filtered_and_paginated(client, owner):
    provider = services.provider_create(name="bulk", kind="openai", base_url="https://bulk.example/v1")
    other = services.provider_create(name="other", kind="openai", base_url="https://other.example/v1")
    for index in range(53):
        card, _ = services.model_card_upsert(name=f"m-{index:02d}", vendor="acme" if index % 2 else "meta")
        services.deployment_create(model=card, provider=provider if index < 50 else other)
    page = client.get(reverse("providers:deployment-list"))
    assert page.status_code == 200
    assert len(page.context["rows"]) == 25 and page.context["page"].paginator.count == 53
    third = client.get(reverse("providers:deployment-list"), {"page": 3})
    assert len(third.context["rows"]) == 3
    only_other = client.get(reverse("providers:deployment-list"), {"provider": "other"})
    assert {row["deployment"].provider.name for row in only_other.context["rows"]} == {"other"}
    acme = client.get(reverse("providers:deployment-list"), {"vendor": "acme"})
    assert acme.context["page"].paginator.count == 26
    searched = client.get(reverse("providers:deployment-list"), {"search": "m-07"}, HTTP_HX_REQUEST="true")
    assert b"m-07@bulk" in searched.content and b"<html" not in searched.content
    services.deployment_update(deployment=Deployment.objects.get(name="m-01@bulk"), is_active=False)
    disabled = client.get(reverse("providers:deployment-list"), {"status": "disabled"})
    assert [row["deployment"].name for row in disabled.context["rows"]] == ["m-01@bulk"]
    none = client.get(reverse("providers:deployment-list"), {"search": "zzz"})
    assert b"No deployments match" in none.content


def test_the_health_page_is_filtered_and_paginated(client, owner):
    provider = services.provider_create(name="hp", kind="openai", base_url="sim://openai/v1")
    other = services.provider_create(name="hq", kind="openai", base_url="sim://openai/v1")
    for index in range(30):
        card, _ = services.model_card_upsert(name=f"h-{index:02d}", vendor="acme")
        services.deployment_create(model=card, provider=provider if index < 28 else other)
    page = client.get(reverse("routing:health"))
    assert page.status_code == 200
    assert len(page.context["rows"]) == 25 and page.context["page"].paginator.count == 30
    assert b"page 1 of 2" in page.content
    by_provider = client.get(reverse("routing:health"), {"provider": "hq"})
    assert [r["deployment"].name for r in by_provider.context["rows"]] == ["h-28@hq", "h-29@hq"]
    healthy = client.get(reverse("routing:health"), {"state": "healthy", "search": "h-0"})
    assert healthy.context["page"].paginator.count == 10
    ejected = client.get(reverse("routing:health"), {"state": "ejected"})
    assert b"No deployments match" in ejected.content


def test_the_dry_run_names_the_invalid_json_where_the_result_goes(client, owner):
    response = client.post(reverse("routing:dry-run"), {"request": "{not json"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Please correct the errors below" not in body
    assert "Request JSON" in body and "Not valid JSON" in body


def test_the_api_takes_a_deployments_provider_by_name_like_its_model(client, owner):
    from console.models import Organization

    org = Organization.objects.get(slug="reg")
    services.provider_create(name="by-name", kind="openai", base_url="https://up.example/v1", organization=org)
    services.model_card_upsert(name="named-model", vendor="acme")
    issued = console_services.admin_token_create(organization=org, user=owner, name="api")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {issued.secret}"}
    created = client.post(
        "/api/v1/deployments/", {"model": "named-model", "provider": "by-name"}, "application/json", **auth
    )
    assert created.status_code == 201, created.content
    assert created.json()["provider_name"] == "by-name" and created.json()["name"] == "named-model@by-name"
    unknown = client.post(
        "/api/v1/deployments/", {"model": "named-model", "provider": "nope", "name": "x"}, "application/json", **auth
    )
    assert unknown.status_code == 400 and "Unknown provider 'nope'" in unknown.content.decode()
    other_owner = console_services.user_create(username="other-owner")
    other = console_services.organization_create(name="Other", slug="other", owner=other_owner)
    services.provider_create(name="theirs", kind="openai", base_url="https://t.example/v1", organization=other)
    hidden = client.post(
        "/api/v1/deployments/", {"model": "named-model", "provider": "theirs", "name": "y"}, "application/json", **auth
    )
    assert hidden.status_code == 400  # another organization's provider is not found by name either
