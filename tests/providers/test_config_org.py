"""Config-as-code for each organization's layer: private models, prices and
visibility of catalog models, and providers and deployments named per organization."""

from __future__ import annotations

from decimal import Decimal

import pytest
import yaml

from console import services as console_services
from gatehouse.config import ConfigError, config_apply, config_export
from providers import services as provider_services
from providers.models import Deployment, ModelCard, OrganizationModel, Provider

FILE = """
models:
  - name: gpt-4o-mini
    vendor: openai
    input_price: "0.15"
    output_price: "0.6"
    capabilities: [chat, streaming]
private_models:
  - name: acme-tuned
    organization: acme
    vendor: acme
    input_price: "1"
    output_price: "2"
    capabilities: [chat]
model_settings:
  - name: gpt-4o-mini
    organization: acme
    input_price: "0.1"
    output_price: "0.4"
    note: MSA 2026
  - name: gpt-4o-mini
    organization: globex
    visible: false
providers:
  - name: inference
    organization: acme
    kind: openai
    base_url: https://acme.example.test/v1
  - name: inference
    organization: globex
    kind: openai
    base_url: https://globex.example.test/v1
deployments:
  - name: main
    organization: acme
    model: acme-tuned
    provider: inference
  - name: main
    organization: globex
    model: gpt-4o-mini
    provider: inference
"""


@pytest.fixture
def orgs(db):
    owner = console_services.user_create(username="cfg-org-owner")
    acme = console_services.organization_create(name="Acme", slug="acme", owner=owner)
    globex = console_services.organization_create(name="Globex", slug="globex", owner=owner)
    return acme, globex


def test_a_file_sets_each_organizations_layer_and_exports_it_back(orgs):
    acme, globex = orgs
    plan = config_apply(yaml.safe_load(FILE), source="test.yaml")
    assert {c.name for c in plan.changes if c.section == "deployments"} == {"acme/main", "globex/main"}
    private = ModelCard.objects.get(name="acme-tuned")
    assert private.organization_id == acme.id and private.input_price == Decimal("1")
    acme_row = OrganizationModel.objects.get(organization=acme)
    assert (acme_row.input_price, acme_row.output_price, acme_row.cached_input_price) == (
        Decimal("0.1"),
        Decimal("0.4"),
        None,
    )
    assert OrganizationModel.objects.get(organization=globex).visible is False
    assert Provider.objects.filter(name="inference").count() == 2
    deployments = {d.organization_id: d for d in Deployment.objects.filter(name="main")}
    assert deployments[acme.id].model == private and deployments[globex.id].provider.organization_id == globex.id

    exported = yaml.safe_load(config_export())
    assert {(e["organization"], e["name"]) for e in exported["model_settings"]} == {
        ("acme", "gpt-4o-mini"),
        ("globex", "gpt-4o-mini"),
    }
    again = config_apply(exported, source="export.yaml")
    assert not again.has_changes


def test_prune_puts_a_model_back_to_the_catalog_and_retires_private_models(orgs):
    config_apply(yaml.safe_load(FILE), source="test.yaml")
    document = yaml.safe_load(FILE)
    document["model_settings"] = document["model_settings"][:1]
    document["private_models"] = []
    document["deployments"] = [d for d in document["deployments"] if d["organization"] == "globex"]
    config_apply(document, source="test.yaml", prune=True)
    assert list(OrganizationModel.objects.values_list("organization__slug", flat=True)) == ["acme"]
    assert ModelCard.objects.get(name="acme-tuned").lifecycle == "retired"
    assert list(Deployment.objects.values_list("organization__slug", flat=True)) == ["globex"]


@pytest.mark.parametrize(
    ("section", "entry", "problem"),
    [
        ("model_settings", {"name": "gpt-4o-mini", "organization": "nope"}, "unknown organization"),
        ("model_settings", {"name": "no-such-model", "organization": "acme"}, "is not a model of the catalog"),
        ("model_settings", {"name": "gpt-4o-mini", "organization": "acme", "input_price": "-1"}, "not a price"),
        ("model_settings", {"name": "gpt-4o-mini"}, "organization: required"),
        ("private_models", {"name": "gpt-4o-mini", "organization": "acme", "vendor": "x"}, "the catalog has"),
    ],
)
def test_bad_entries_name_the_problem_and_apply_nothing(orgs, section, entry, problem):
    provider_services.model_card_upsert(name="gpt-4o-mini", vendor="openai")
    with pytest.raises(ConfigError) as caught:
        config_apply({section: [entry]}, source="bad.yaml")
    assert problem in str(caught.value)
    assert not OrganizationModel.objects.exists()
    assert not ModelCard.objects.filter(organization__isnull=False).exists()


def test_a_deployment_cannot_use_another_organizations_private_model_or_provider(orgs):
    config_apply(yaml.safe_load(FILE), source="test.yaml")
    document = {
        "deployments": [{"name": "steal", "organization": "globex", "model": "acme-tuned", "provider": "inference"}]
    }
    with pytest.raises(ConfigError) as caught:
        config_apply(document, source="bad.yaml")
    assert "unknown model 'acme-tuned'" in str(caught.value)


def test_other_sections_name_an_organizations_deployment_by_slug_and_name(orgs):
    document = yaml.safe_load(FILE)
    document["deployment_policies"] = [
        {"name": "acme/main", "failure_threshold": 3, "failure_window": 30.0, "cooldown": 10.0}
    ]
    config_apply(document, source="test.yaml")
    exported = yaml.safe_load(config_export(sections=["deployment_policies"]))
    assert [p["name"] for p in exported["deployment_policies"]] == ["acme/main"]
    with pytest.raises(ConfigError) as caught:
        config_apply({"deployment_policies": [{**document["deployment_policies"][0], "name": "main"}]}, source="x")
    assert "unknown deployment 'main'" in str(caught.value)
