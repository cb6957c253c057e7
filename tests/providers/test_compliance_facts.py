"""Compliance facts in the registry: a deployment inherits its provider's facts and may
override them, self-hosted open-weight models default to on-prem with nothing kept, every
change is kept in the facts history, the vocabulary is per organization, and the facts
are edited through the API, the console and the config file (which round-trips)."""

# ruff: noqa: F811  (the API fixtures are imported by name)
from __future__ import annotations

from datetime import date, timedelta

import pytest
import yaml
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from gatehouse.config import config_apply, config_export
from providers import services
from providers.facts_services import (
    certification_term_put,
    certification_vocabulary,
    compliance_facts_set,
    facts_effective,
)
from providers.models import Deployment
from providers.models_compliance import ComplianceFactChange
from providers.snapshot import catalog_build
from tests.api.conftest import a, b, client_for, models, shared_provider  # noqa: F401

pytestmark = pytest.mark.django_db


def test_a_deployment_inherits_its_provider_facts_and_overrides_some(a):
    compliance_facts_set(
        provider=a.provider, region="us", region_name="us-east-1", certifications=["soc2"], retention_days=30
    )
    facts = facts_effective(a.deployment)
    assert (facts.region, facts.retention_days, facts.certifications) == ("us", 30, frozenset({"soc2"}))
    assert facts.source("region") == "provider"
    compliance_facts_set(deployment=a.deployment, region="eu", region_name="westeurope", retention_days=0)
    facts = facts_effective(a.deployment)
    assert (facts.region, facts.region_name, facts.retention_days) == ("eu", "westeurope", 0)
    assert facts.certifications == frozenset({"soc2"}) and facts.source("certifications") == "provider"
    assert facts.source("region") == "deployment"
    # Clearing an override inherits again.
    compliance_facts_set(deployment=a.deployment, region="")
    assert facts_effective(a.deployment).region == "us"


def test_the_snapshot_carries_facts_and_self_hosted_models_default_to_on_prem(a, models):
    card, _ = services.model_card_upsert(
        name="llama-local", vendor="meta", tier="open-weight", operator_priced=True, capabilities=["chat"]
    )
    local = services.deployment_create(model=card, provider=a.provider, name="llama@local")
    compliance_facts_set(provider=a.provider, region="us", trains_on_data=True)
    snapshot = catalog_build()
    served = {d.name: d for m in snapshot.models.values() for d in m.deployments}
    assert served[a.deployment.name].facts.region == "us"
    assert served[a.deployment.name].facts.trains_on_data is True
    # The provider's stated facts win over the catalog's default; the rest come from the catalog.
    facts = served[local.name].facts
    assert facts.region == "us" and facts.trains_on_data is True
    assert facts.retention_days == 0 and facts.source("retention_days") == "catalog"
    compliance_facts_set(provider=a.provider, region="", trains_on_data=None)
    facts = {d.name: d for m in catalog_build().models.values() for d in m.deployments}[local.name].facts
    assert (facts.region, facts.trains_on_data, facts.zero_data_retention) == ("on-prem", False, True)
    assert facts.record["region"] == "on-prem"


def test_the_snapshot_reads_facts_in_one_more_query(a, django_assert_max_num_queries):
    for index in range(5):
        deployment = services.deployment_create(model=a.deployment.model, provider=a.provider, name=f"d{index}")
        compliance_facts_set(deployment=deployment, region="eu")
    # Retired cards, cards, facts, deployments, organizations' layers: a fixed count, whatever the size.
    with django_assert_max_num_queries(5):
        catalog_build()


def test_every_change_is_kept_in_the_history_and_audited(a):
    compliance_facts_set(provider=a.provider, actor=a.owner, region="us", certifications=["soc2"])
    compliance_facts_set(provider=a.provider, actor=a.admin, region="us", certifications=["soc2"])  # no change
    compliance_facts_set(provider=a.provider, actor=a.admin, source="api", region="eu")
    history = list(ComplianceFactChange.objects.filter(subject_kind="provider", subject_id=a.provider.id))
    assert len(history) == 2
    latest = history[0]
    assert latest.actor == a.admin.username and latest.source == "api"
    assert latest.before == {"region": "us"} and latest.after == {"region": "eu"}
    assert latest.organization_id == a.org.id
    assert AuditEvent.objects.filter(action="provider.facts", target=a.provider.name).count() == 2


def test_bad_facts_are_refused_with_the_field_named(a):
    with pytest.raises(ValidationError) as problem:
        compliance_facts_set(provider=a.provider, region="mars", retention_days=-1, evidence_url="ftp://x")
    assert set(problem.value.message_dict) == {"region", "retention_days", "evidence_url"}
    with pytest.raises(ValidationError) as problem:
        compliance_facts_set(provider=a.provider, certifications=["nhs_dspt"])
    assert "nhs_dspt" in str(problem.value)


def test_the_vocabulary_is_per_organization(a, b):
    certification_term_put(organization=a.org, slug="nhs_dspt", label="NHS DSP Toolkit")
    assert ("nhs_dspt", "NHS DSP Toolkit") in certification_vocabulary(organization_id=a.org.id)
    assert "nhs_dspt" not in dict(certification_vocabulary(organization_id=b.org.id))
    compliance_facts_set(provider=a.provider, certifications=["nhs_dspt", "soc2"])
    with pytest.raises(ValidationError):
        compliance_facts_set(provider=b.provider, certifications=["nhs_dspt"])
    with pytest.raises(ValidationError):
        certification_term_put(organization=a.org, slug="hipaa_baa", label="mine")


def test_api_reads_and_changes_facts_within_the_organization(a, b, shared_provider):
    client = client_for(a.admin, a.org)
    response = client.patch(
        f"/api/v1/provider-facts/{a.provider.id}/",
        {"region": "eu", "certifications": ["gdpr_dpa", "soc2"], "review_due": "2020-01-01"},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["in_force"]["region"] == "eu" and body["stale"] is True
    assert body["history"][0]["after"]["region"] == "eu"
    response = client.patch(f"/api/v1/deployment-facts/{a.deployment.id}/", {"retention_days": 0}, format="json")
    body = response.json()
    assert body["stated"] == {"retention_days": 0}
    assert body["in_force"]["region"] == "eu" and body["sources"]["region"] == "provider"
    assert (
        client.patch(f"/api/v1/provider-facts/{a.provider.id}/", {"region": "mars"}, format="json").status_code == 400
    )
    # Another organization's provider does not exist here; a shared one is the operator's.
    assert client.get(f"/api/v1/provider-facts/{b.provider.id}/").status_code == 404
    assert (
        client.patch(f"/api/v1/provider-facts/{shared_provider[0].id}/", {"region": "us"}, format="json").status_code
        == 403
    )
    assert client_for(a.member, a.org).get(f"/api/v1/provider-facts/{a.provider.id}/").status_code == 403
    created = client.post("/api/v1/certifications/", {"slug": "c5", "label": "BSI C5"}, format="json")
    assert created.status_code == 201
    slugs = [t["slug"] for t in client.get("/api/v1/certifications/").json()]
    assert "c5" in slugs and "hipaa_baa" in slugs
    assert "c5" not in [t["slug"] for t in client_for(b.admin, b.org).get("/api/v1/certifications/").json()]


def test_config_file_round_trips_facts_and_the_vocabulary(a):
    certification_term_put(organization=a.org, slug="nhs_dspt", label="NHS DSP Toolkit")
    compliance_facts_set(
        provider=a.provider,
        region="eu",
        region_name="eu-west-1",
        certifications=["nhs_dspt", "soc2"],
        retention_days=30,
        trains_on_data=False,
        review_due=date(2027, 6, 30),
        evidence_url="https://trust.example.com/soc2",
    )
    compliance_facts_set(deployment=a.deployment, region="us")
    sections = ["certifications", "compliance_facts"]
    exported = config_export(sections=sections)
    document = yaml.safe_load(exported)
    # An organization's provider and deployment are named `<slug>/<name>`, as in the registry's sections.
    slug = a.org.slug
    assert document["compliance_facts"][0]["name"] == f"{slug}/{a.provider.name}"
    assert document["compliance_facts"][1] == {
        "name": f"{slug}/{a.deployment.name}",
        "of": "deployment",
        "region": "us",
    }
    assert not config_apply(document, source="test").has_changes
    document["compliance_facts"][1]["retention_days"] = 0
    plan = config_apply(document, source="test")
    assert [c.detail for c in plan.changes if c.action == "update"] == [("retention_days",)]
    assert facts_effective(Deployment.objects.get(pk=a.deployment.pk)).retention_days == 0
    assert ComplianceFactChange.objects.filter(source="config").count() == 1
    again = config_export(sections=sections)
    assert not config_apply(yaml.safe_load(again), source="test").has_changes
    bad = {"compliance_facts": [{"name": "nope", "of": "provider", "region": "moon"}]}
    with pytest.raises(Exception) as problem:
        config_apply(bad, source="test")
    assert "unknown provider 'nope'" in str(problem.value) and "'moon'" in str(problem.value)


def test_console_pages_show_and_edit_facts_and_their_history(a, b, client):
    client.force_login(a.owner)
    url = reverse("providers:provider-facts", args=[a.provider.pk])
    response = client.post(
        url,
        {
            "region": "eu",
            "region_name": "eu-west-1",
            "certifications": ["soc2", "gdpr_dpa"],
            "retention_days": "0",
            "trains_on_data": "false",
            "review_due": (timezone.localdate() - timedelta(days=1)).isoformat(),
        },
    )
    assert response.status_code == 302
    facts = facts_effective(a.deployment)
    assert facts.region == "eu" and facts.trains_on_data is False and facts.certifications == {"soc2", "gdpr_dpa"}
    page = client.get(url).content.decode()
    assert 'data-testid="stale"' in page and "eu-west-1" in page
    # The organization's page of the model card (the catalog's own page is the operator's).
    card = client.get(reverse("providers:model-organization", args=[a.deployment.model.pk])).content.decode()
    assert 'data-testid="compliance-panel"' in card and "gdpr_dpa, soc2" in card and "stale" in card
    assert 'provider <span class="mono">' in card  # the history table names what changed
    response = client.post(
        reverse("providers:deployment-facts", args=[a.deployment.pk]), {"region": "us", "inherit_certifications": "on"}
    )
    assert response.status_code == 302
    assert facts_effective(a.deployment).region == "us"
    page = client.get(reverse("providers:deployment-edit", args=[a.deployment.pk])).content.decode()
    assert 'deployment <span class="mono">' in page and "eu → us" not in page  # override is its own change
    assert client.get(reverse("providers:provider-facts", args=[b.provider.pk])).status_code == 404
    overview = client.get(reverse("providers:model-facts", args=[a.deployment.model.pk])).content.decode()
    assert a.deployment.name in overview and b.deployment.name not in overview  # only what this organization sees
    assert 'data-testid="facts-history"' in overview and "console" in overview
    vocabulary = client.post(reverse("providers:certifications"), {"slug": "c5", "label": "BSI C5"})
    assert vocabulary.status_code == 302
    assert "BSI C5" in client.get(reverse("providers:certifications")).content.decode()
