"""The catalog is the operator's; each organization's prices, visibility, private
models and names are its own, and no answer tells one organization about another's."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from providers.models import Deployment, ModelCard, OrganizationModel, Provider
from providers.services_org import private_model_upsert
from providers.snapshot import catalog_build
from tests.api.conftest import body_text, client_for

pytestmark = pytest.mark.django_db


# --- the catalog is the operator's ---------------------------------------------------------


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_org_owners_and_admins_cannot_change_the_catalog(a, b, role):
    client = client_for(getattr(a, role), a.org)
    for body in ({"input_price": "0", "output_price": "0"}, {"lifecycle": "retired"}):
        response = client.patch("/api/v1/models/gpt-test/", body, format="json")
        assert response.status_code == 403, response.content
    assert client.post("/api/v1/models/", {"name": "global-x", "vendor": "x"}, format="json").status_code == 403
    card = ModelCard.objects.get(name="gpt-test")
    assert (card.input_price, card.lifecycle) == (Decimal("0.150000"), "active")
    assert not ModelCard.objects.filter(name="global-x").exists()
    assert catalog_build().model("gpt-test").price.input == Decimal("0.15")


def test_the_console_refuses_catalog_edits_to_org_admins(a, client):
    card = ModelCard.objects.get(name="gpt-test")
    client.force_login(a.admin)
    edit = reverse("providers:model-edit", args=[card.pk])
    assert client.get(edit).status_code == 403
    assert client.post(edit, {"name": "gpt-test", "vendor": "openai", "input_price": "0"}).status_code == 403
    lifecycle = reverse("providers:model-lifecycle", args=[card.pk])
    assert client.post(lifecycle, {"lifecycle": "retired"}).status_code == 403
    card.refresh_from_db()
    assert card.lifecycle == "active" and card.input_price == Decimal("0.15")


def test_an_operator_changes_the_catalog(a, operator):
    client = client_for(operator, a.org)
    response = client.patch("/api/v1/models/gpt-test/", {"output_price": "0.7"}, format="json")
    assert response.status_code == 200 and response.json()["output_price"] == "0.700000"


# --- each organization's layer ----------------------------------------------------------------


def test_org_admins_set_contracted_prices_visibility_and_lifecycle(a, b):
    client = client_for(a.admin, a.org)
    untouched = client.get("/api/v1/model-settings/gpt-test/").json()
    assert untouched["visible"] is True and untouched["input_price"] is None
    assert untouched["list_input_price"] == "0.150000"
    response = client.patch(
        "/api/v1/model-settings/gpt-test/",
        {"input_price": "0.1", "output_price": "0.45", "note": "MSA 2026"},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["input_price"] == "0.100000" and response.json()["list_input_price"] == "0.150000"
    hidden = client.patch("/api/v1/model-settings/embed-test/", {"visible": False}, format="json")
    assert hidden.status_code == 200 and hidden.json()["visible"] is False
    listed = client.get("/api/v1/model-settings/").json()
    assert {row["model"] for row in listed["results"]} == {"gpt-test", "embed-test"}
    assert AuditEvent.objects.filter(action="model.organization_set", organization_id=a.org.id).count() == 2

    snapshot = catalog_build()
    mine, theirs = snapshot.for_organization(a.org.id), snapshot.for_organization(b.org.id)
    assert mine.model("gpt-test").price.input == Decimal("0.1")
    assert mine.model("gpt-test").catalog_price.input == Decimal("0.15")
    assert mine.model("embed-test") is None
    assert theirs.model("gpt-test").price.input == Decimal("0.15")
    # B sees none of A's settings.
    assert client_for(b.admin, b.org).get("/api/v1/model-settings/").json()["results"] == []

    reset = client.delete("/api/v1/model-settings/gpt-test/")
    assert reset.status_code == 204
    assert client.get("/api/v1/model-settings/gpt-test/").json()["input_price"] is None


@pytest.mark.parametrize("body", [{"input_price": "-1"}, {"input_price": "abc"}, {"lifecycle": "gone"}])
def test_bad_settings_are_a_400(a, body):
    response = client_for(a.admin, a.org).patch("/api/v1/model-settings/gpt-test/", body, format="json")
    assert response.status_code == 400, response.content
    assert not OrganizationModel.objects.exists()


def test_members_read_settings_but_cannot_change_them(a):
    client = client_for(a.member, a.org)
    assert client.get("/api/v1/model-settings/gpt-test/").status_code == 200
    assert client.patch("/api/v1/model-settings/gpt-test/", {"visible": False}, format="json").status_code == 403
    assert client.get("/api/v1/model-settings/no-such-model/").status_code == 404


def test_the_console_page_sets_the_organizations_prices(a, client):
    card = ModelCard.objects.get(name="gpt-test")
    client.force_login(a.admin)
    url = reverse("providers:model-organization", args=[card.pk])
    assert client.get(url).status_code == 200
    response = client.post(url, {"visible": "on", "lifecycle": "deprecated", "input_price": "0.12", "note": "x"})
    assert response.status_code == 302
    row = OrganizationModel.objects.get(organization=a.org, model=card)
    assert row.input_price == Decimal("0.12") and row.output_price is None and row.lifecycle == "deprecated"
    listing = client.get(reverse("providers:model-list"))
    assert "contracted" in listing.content.decode()


def test_private_models_are_visible_only_in_their_organization(a, b):
    client = client_for(b.admin, b.org)
    created = client.post(
        "/api/v1/models/",
        {"name": "b-secret", "vendor": "acme", "input_price": "2", "private": True, "capabilities": ["chat"]},
        format="json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["private"] is True
    assert ModelCard.objects.get(name="b-secret").organization_id == b.org.id
    # B deploys it on its own provider.
    deployed = client.post("/api/v1/deployments/", {"model": "b-secret", "provider": b.provider.id}, format="json")
    assert deployed.status_code == 201, deployed.content

    other = client_for(a.admin, a.org)
    assert "b-secret" not in {m["name"] for m in other.get("/api/v1/models/", {"limit": 500}).json()["results"]}
    assert other.get("/api/v1/models/b-secret/").status_code == 404
    assert other.get(f"/api/v1/models/{created.json()['id']}/").status_code == 404
    refused = other.post("/api/v1/deployments/", {"model": "b-secret", "provider": a.provider.id}, format="json")
    assert refused.status_code == 400 and "Unknown model 'b-secret'" in body_text(refused)
    key = other.post("/api/v1/keys/", {"name": "k", "allowed_models": ["b-secret"]}, format="json")
    assert key.status_code == 400 and "b-secret" in body_text(key)
    # A may create its own model of the same name; neither learns of the other.
    mine = other.post("/api/v1/models/", {"name": "b-secret", "vendor": "x", "private": True}, format="json")
    assert mine.status_code == 201, mine.content
    assert ModelCard.objects.filter(name="b-secret").count() == 2


def test_a_private_model_cannot_take_a_catalog_name(a):
    client = client_for(a.admin, a.org)
    response = client.post("/api/v1/models/", {"name": "gpt-test", "vendor": "x", "private": True}, format="json")
    assert response.status_code == 400 and "name" in response.json()


# --- names are unique per organization ----------------------------------------------------------


def test_two_organizations_use_the_same_provider_and_deployment_names(a, b):
    body = {"name": "prov-b", "kind": "openai", "base_url": "https://x.example.test/v1"}
    in_b = client_for(b.admin, b.org).post("/api/v1/providers/", body, format="json")
    assert in_b.status_code == 201, in_b.content
    in_a = client_for(a.admin, a.org).post("/api/v1/providers/", body, format="json")
    assert in_a.status_code == 201, in_a.content
    assert Provider.objects.filter(name="prov-b").count() == 2
    # The same name twice in one organization is refused, naming only that organization's object.
    again = client_for(a.admin, a.org).post("/api/v1/providers/", body, format="json")
    assert again.status_code == 400 and "exists already" in body_text(again)

    deployment = {"name": "dep-same", "model": "gpt-test"}
    for world, response in ((b, in_b), (a, in_a)):
        made = client_for(world.admin, world.org).post(
            "/api/v1/deployments/", {**deployment, "provider": response.json()["id"]}, format="json"
        )
        assert made.status_code == 201, made.content
    assert Deployment.objects.filter(name="dep-same").count() == 2
    # Renaming onto a name another organization uses is fine; onto one's own is not.
    own = client_for(a.admin, a.org)
    rename = own.patch(f"/api/v1/deployments/{a.deployment.id}/", {"name": "dep-same"}, format="json")
    assert rename.status_code == 400 and "exists already" in body_text(rename)
    rename_provider = own.patch(f"/api/v1/providers/{a.provider.id}/", {"name": b.provider.name}, format="json")
    assert rename_provider.status_code == 200, rename_provider.content


def test_the_snapshot_routes_each_organization_to_its_own_same_named_deployment(a, b):
    from providers import services

    for world in (a, b):
        provider = services.provider_create(
            name="twin", kind="openai", base_url="https://twin.example.test/v1", organization=world.org
        )
        services.deployment_create(model=ModelCard.objects.get(name="gpt-test"), provider=provider, name="twin-dep")
    snapshot = catalog_build()
    for world in (a, b):
        view = snapshot.for_organization(world.org.id).model("gpt-test")
        twins = [d for d in view.deployments if d.name == "twin-dep"]
        assert [d.organization_id for d in twins] == [world.org.id]


def test_private_model_names_never_leak_through_the_catalog_facade(a, b):
    from providers.facade import model_names, models_known

    private_model_upsert(organization=b.org, name="b-only", vendor="acme")
    assert "b-only" not in model_names(organization_id=a.org.id)
    assert "b-only" in model_names(organization_id=b.org.id)
    assert models_known(["b-only"], organization_id=a.org.id) == set()


def test_org_admins_add_and_edit_private_models_in_the_console(a, b, client):
    client.force_login(a.admin)
    form = {
        "name": "a-tuned",
        "vendor": "acme",
        "tier": "mid",
        "lifecycle": "active",
        "context_window": "32000",
        "max_output_tokens": "4096",
        "input_price": "0.5",
        "output_price": "1.5",
        "cached_input_price": "0",
    }
    response = client.post(reverse("providers:model-create") + "?private=1", form)
    assert response.status_code == 302, response.content
    card = ModelCard.objects.get(name="a-tuned")
    assert card.organization_id == a.org.id
    edit = client.post(reverse("providers:model-edit", args=[card.pk]), {**form, "input_price": "0.4"})
    assert edit.status_code == 302
    card.refresh_from_db()
    assert card.input_price == Decimal("0.4")
    assert "a-tuned" in client.get(reverse("providers:model-list")).content.decode()
    # Another organization neither lists nor opens it.
    client.force_login(b.admin)
    assert "a-tuned" not in client.get(reverse("providers:model-list")).content.decode()
    assert client.get(reverse("providers:model-edit", args=[card.pk])).status_code == 404
