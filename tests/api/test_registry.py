"""Models, providers and deployments: prices are exact decimal strings, provider
secrets are write-only, shared providers are read-only for organization admins."""

from __future__ import annotations

import pytest

from providers.models import Deployment, ModelCard, Provider
from tests.api.conftest import client_for

pytestmark = pytest.mark.django_db


# --- models ------------------------------------------------------------------------------


def test_models_list_filters_and_paginates(a):
    client = client_for(a.member, a.org)
    everything = client.get("/api/v1/models/").json()
    assert {m["name"] for m in everything["results"]} == {"gpt-test", "embed-test"}
    chat = next(m for m in everything["results"] if m["name"] == "gpt-test")
    assert chat["input_price"] == "0.150000" and chat["output_price"] == "0.600000"

    def names(**params) -> set[str]:
        response = client.get("/api/v1/models/", params)
        assert response.status_code == 200, response.content
        return {m["name"] for m in response.json()["results"]}

    assert names(tier="edge") == {"embed-test"}
    assert names(capability="chat") == {"gpt-test"}
    assert names(capability="embeddings", vendor="OpenAI") == {"embed-test"}
    assert names(lifecycle="deprecated") == set()
    assert names(search="emb") == {"embed-test"}
    page = client.get("/api/v1/models/", {"limit": 1}).json()
    assert page["count"] == 2 and len(page["results"]) == 1
    bad = client.get("/api/v1/models/", {"tier": "legendary", "capability": "telepathy"})
    assert bad.status_code == 400 and set(bad.json()) == {"tier", "capability"}


def test_models_are_retrieved_by_id_or_by_name(a, models):
    client = client_for(a.finance, a.org)
    assert client.get(f"/api/v1/models/{models['chat'].id}/").json()["name"] == "gpt-test"
    assert client.get("/api/v1/models/embed-test/").json()["id"] == models["embed"].id
    assert client.get("/api/v1/models/no-such-model/").status_code == 404


def test_operator_creates_and_updates_model_cards_with_decimal_prices(a, operator):
    client = client_for(operator, a.org)
    response = client.post(
        "/api/v1/models/",
        {
            "name": "meta-llama/Llama-3.1-8B",
            "vendor": "meta",
            "tier": "open-weight",
            "input_price": "0.100001",
            "output_price": "0.2",
            "capabilities": ["chat"],
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["input_price"] == "0.100001" and response.json()["output_price"] == "0.200000"
    card = ModelCard.objects.get(name="meta-llama/Llama-3.1-8B")
    assert str(card.output_price) == "0.200000" and card.source == "manual"

    updated = client.patch("/api/v1/models/meta-llama/Llama-3.1-8B/", {"output_price": "0.25"}, format="json")
    assert updated.status_code == 200 and updated.json()["output_price"] == "0.250000"
    card.refresh_from_db()
    assert str(card.output_price) == "0.250000"

    duplicate = client.post("/api/v1/models/", {"name": "gpt-test", "vendor": "x"}, format="json")
    assert duplicate.status_code == 400 and "name" in duplicate.json()


@pytest.mark.parametrize("price", ["-1", "abc", "0.1234567", "", None, "NaN", "Infinity"])
def test_negative_or_non_numeric_prices_are_rejected(a, operator, price):
    client = client_for(operator, a.org)
    response = client.patch("/api/v1/models/gpt-test/", {"input_price": price}, format="json")
    assert response.status_code == 400, response.content
    assert "input_price" in response.json()
    assert str(ModelCard.objects.get(name="gpt-test").input_price) == "0.150000"


# --- providers ------------------------------------------------------------------------------


def test_providers_list_shared_and_own_and_never_a_secret(a, b, shared_provider):
    client = client_for(a.admin, a.org)
    response = client.get("/api/v1/providers/")
    assert response.status_code == 200
    rows = {p["name"]: p for p in response.json()["results"]}
    assert set(rows) == {"openai-a", "shared-sim"}
    assert rows["openai-a"]["has_secret"] is True and rows["openai-a"]["shared"] is False
    assert rows["shared-sim"]["shared"] is True
    assert "secret" not in rows["openai-a"] and "secret_encrypted" not in rows["openai-a"]


def test_provider_secret_is_write_only_in_every_response(a):
    """Scan every provider and deployment response for the plaintext and the stored token."""
    client = client_for(a.owner, a.org)
    plaintext = "sk-live-do-not-leak-0123456789"
    created = client.post(
        "/api/v1/providers/",
        {
            "name": "azure-a",
            "kind": "azure_openai",
            "base_url": "https://a.openai.azure.test",
            "api_version": "2024-10-21",
            "secret": plaintext,
            "extra_headers": {"x-team": "a"},
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    provider = Provider.objects.get(name="azure-a")
    assert provider.organization_id == a.org.id and provider.secret_encrypted
    assert created.json()["has_secret"] is True

    rotated_plaintext = "sk-live-rotated-9876543210"
    responses = [
        created,
        client.get("/api/v1/providers/"),
        client.get(f"/api/v1/providers/{provider.id}/"),
        client.patch(f"/api/v1/providers/{provider.id}/", {"api_version": "2025-01-01"}, format="json"),
        client.post("/api/v1/deployments/", {"model": "gpt-test", "provider": provider.id}, format="json"),
        client.get("/api/v1/deployments/"),
    ]
    provider.refresh_from_db()
    stored_tokens = {provider.secret_encrypted, a.provider.secret_encrypted}
    rotated = client.patch(f"/api/v1/providers/{provider.id}/", {"secret": rotated_plaintext}, format="json")
    provider.refresh_from_db()
    stored_tokens.add(provider.secret_encrypted)
    responses += [rotated, client.get(f"/api/v1/providers/{provider.id}/"), client.get("/api/v1/providers/")]
    for response in responses:
        text = response.content.decode()
        assert response.status_code in (200, 201), text
        for secret in (plaintext, rotated_plaintext, a.provider_secret, *stored_tokens):
            assert secret not in text

    from gatehouse.crypto import secret_decrypt

    assert secret_decrypt(provider.secret_encrypted) == rotated_plaintext
    # Omitting the secret keeps it; an empty string clears it.
    client.patch(f"/api/v1/providers/{provider.id}/", {"is_active": False}, format="json")
    provider.refresh_from_db()
    assert secret_decrypt(provider.secret_encrypted) == rotated_plaintext and provider.is_active is False
    cleared = client.patch(f"/api/v1/providers/{provider.id}/", {"secret": ""}, format="json")
    assert cleared.json()["has_secret"] is False


def test_provider_validation_errors_are_field_messages(a):
    client = client_for(a.owner, a.org)
    response = client.post(
        "/api/v1/providers/", {"name": "openai-a", "kind": "cohere", "base_url": "ftp://x"}, format="json"
    )
    assert response.status_code == 400
    assert {"name", "kind"} <= set(response.json())
    bad_url = client.post("/api/v1/providers/", {"name": "p2", "kind": "openai", "base_url": "ftp://x"}, format="json")
    assert bad_url.status_code == 400 and "base_url" in bad_url.json()
    rename_clash = client.patch(f"/api/v1/providers/{a.provider.id}/", {"name": "openai-a "}, format="json")
    assert rename_clash.status_code == 200  # its own name is not a clash


def test_shared_providers_are_read_only_for_organization_admins(a, shared_provider):
    provider, deployment = shared_provider
    client = client_for(a.owner, a.org)
    assert client.get(f"/api/v1/providers/{provider.id}/").status_code == 200
    assert (
        client.patch(f"/api/v1/providers/{provider.id}/", {"base_url": "https://x.test"}, format="json").status_code
        == 403
    )
    assert client.delete(f"/api/v1/providers/{provider.id}/").status_code == 403
    assert client.patch(f"/api/v1/deployments/{deployment.id}/", {"weight": 9}, format="json").status_code == 403
    assert client.delete(f"/api/v1/deployments/{deployment.id}/").status_code == 403
    on_shared = client.post(
        "/api/v1/deployments/", {"model": "gpt-test", "provider": provider.id, "name": "mine@shared"}, format="json"
    )
    assert on_shared.status_code == 400 and "provider" in on_shared.json()
    make_shared = client.post(
        "/api/v1/providers/",
        {"name": "global", "kind": "openai", "base_url": "https://x.test", "shared": True},
        format="json",
    )
    assert make_shared.status_code == 403
    provider.refresh_from_db()
    deployment.refresh_from_db()
    assert provider.base_url == "sim://openai/v1" and deployment.weight == 1
    assert not Provider.objects.filter(name="global").exists()


def test_superusers_manage_shared_providers(a, shared_provider):
    from django.contrib.auth import get_user_model

    provider, _ = shared_provider
    get_user_model().objects.filter(id=a.owner.id).update(is_superuser=True)
    client = client_for(a.owner, a.org)
    assert client.patch(f"/api/v1/providers/{provider.id}/", {"api_version": "v2"}, format="json").status_code == 200
    created = client.post(
        "/api/v1/providers/",
        {"name": "global", "kind": "openai", "base_url": "https://x.test", "shared": True},
        format="json",
    )
    assert created.status_code == 201 and created.json()["shared"] is True
    assert Provider.objects.get(name="global").organization_id is None


def test_deleting_a_provider_removes_its_deployments(a):
    client = client_for(a.admin, a.org)
    assert client.delete(f"/api/v1/providers/{a.provider.id}/").status_code == 204
    assert not Provider.objects.filter(id=a.provider.id).exists()
    assert not Deployment.objects.filter(id=a.deployment.id).exists()


# --- deployments ------------------------------------------------------------------------------


def test_deployment_crud_with_model_by_name_or_id(a, models, shared_provider):
    client = client_for(a.admin, a.org)
    listed = {d["name"] for d in client.get("/api/v1/deployments/").json()["results"]}
    assert listed == {a.deployment.name, "embed@shared"}

    by_name = client.post(
        "/api/v1/deployments/",
        {
            "model": "embed-test",
            "provider": a.provider.id,
            "upstream_model": "text-embedding-3-small",
            "weight": 3,
            "timeout": 30,
            "is_active": False,
        },
        format="json",
    )
    assert by_name.status_code == 201, by_name.content
    data = by_name.json()
    assert data["name"] == "embed-test@openai-a" and data["model_name"] == "embed-test"
    assert (data["weight"], data["timeout"], data["is_active"]) == (3, 30.0, False)
    by_id = client.post(
        "/api/v1/deployments/", {"model": models["chat"].id, "provider": a.provider.id, "name": "chat-2"}, format="json"
    )
    assert by_id.status_code == 201 and by_id.json()["model"] == models["chat"].id

    updated = client.patch(
        f"/api/v1/deployments/{data['id']}/", {"weight": 7, "is_active": True, "model": "gpt-test"}, format="json"
    )
    assert updated.status_code == 200
    deployment = Deployment.objects.get(id=data["id"])
    assert (deployment.weight, deployment.is_active, deployment.model_id) == (7, True, models["chat"].id)

    clash = client.patch(f"/api/v1/deployments/{data['id']}/", {"name": "chat-2"}, format="json")
    assert clash.status_code == 400 and "name" in clash.json()
    invalid = client.post(
        "/api/v1/deployments/",
        {"model": "no-such-model", "provider": a.provider.id, "weight": -1, "timeout": 0},
        format="json",
    )
    assert invalid.status_code == 400 and {"model", "weight", "timeout"} <= set(invalid.json())

    assert client.delete(f"/api/v1/deployments/{data['id']}/").status_code == 204
    assert not Deployment.objects.filter(id=data["id"]).exists()
