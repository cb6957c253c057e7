"""Compliance facts and the matrix's attribute rules, through /v1 against the simulator:
a route spanning us and eu serves pii only from eu, PHI without a BAA-covered deployment
is a 403 naming the requirement, the dry run explains both, and the usage record keeps
the terms the answer was processed under."""

from __future__ import annotations

import pytest
from django.urls import reverse

from providers.facts_services import compliance_facts_set
from tests.conftest import gateway_sync, usage_wait
from tests.routing.support import chat, model_card, policy, reset_state, sim_deployment

HTMX = {"HTTP_HX_REQUEST": "true"}
PII = [{"role": "user", "content": "Send the offer to jane.doe@example.com"}]


@pytest.fixture
def spread_route(demo):
    card = model_card("facts-model")
    us = sim_deployment(card, "facts@us")
    eu = sim_deployment(card, "facts@eu")
    reset_state(us, eu)
    compliance_facts_set(provider=us.provider, region="us", region_name="us-east-1", certifications=["soc2"])
    compliance_facts_set(
        provider=eu.provider,
        region="eu",
        region_name="eu-west-1",
        certifications=["soc2", "gdpr_dpa"],
        retention_days=0,
        trains_on_data=False,
    )
    policy(
        demo.org,
        demo.owner,
        routes=[{"name": "assistant", "targets": [{"deployment": us.name, "weight": 1000}, {"deployment": eu.name}]}],
        requirements={"pii": ["region in [eu]"], "phi": ["certifications include hipaa_baa"]},
        # The matrix approves every class: only the requirements decide.
        settings={"unlisted_max_class": ""},
    )
    gateway_sync()
    return us, eu


def test_pii_is_served_only_from_eu_and_the_record_keeps_the_terms(demo, spread_route, client):
    us, eu = spread_route
    plain = chat(demo, "assistant")
    assert plain.status_code == 200 and plain.headers["x-gatehouse-deployment"] == us.name
    for _ in range(6):
        response = chat(demo, "assistant", messages=PII)
        assert response.status_code == 200, response.text
        assert response.headers["x-gatehouse-deployment"] == eu.name
        assert response.headers["x-gatehouse-data-classification"] == "pii"
    record = usage_wait(response.headers["x-request-id"])
    assert record.deployment_facts["region"] == "eu"
    assert record.deployment_facts["region_name"] == "eu-west-1"
    assert record.deployment_facts["certifications"] == ["gdpr_dpa", "soc2"]
    assert record.deployment_facts["retention_days"] == 0
    assert record.deployment_facts["trains_on_data"] is False
    assert usage_wait(plain.headers["x-request-id"]).deployment_facts["region"] == "us"
    # An auditor sees the terms on the usage page and in the API.
    client.force_login(demo.owner)
    page = client.get(reverse("budgets:usage-detail", args=[record.request_id])).content.decode()
    assert "region eu (eu-west-1) · gdpr_dpa, soc2 · retention 0 days" in page
    api = client.get(f"/api/v1/usage/{record.request_id}/", HTTP_X_GATEHOUSE_ORGANIZATION=demo.org.slug)
    assert api.status_code == 200, api.content
    assert api.json()["deployment_facts"]["certifications"] == ["gdpr_dpa", "soc2"]


def test_phi_without_a_baa_is_403_naming_the_requirement(demo, spread_route):
    response = chat(demo, "assistant", headers={"x-data-classification": "phi"})
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "no_compliant_model" and error["type"] == "permission_error"
    assert "'phi'" in error["message"] and "`certifications include hipaa_baa`" in error["message"]
    record = usage_wait(response.headers["x-request-id"])
    assert record.status_code == 403 and record.error_code == "no_compliant_model"


def test_a_deployment_override_of_its_provider_facts_changes_the_route(demo, spread_route):
    us, _ = spread_route
    compliance_facts_set(deployment=us, certifications=["soc2", "hipaa_baa"])
    gateway_sync()
    response = chat(demo, "assistant", headers={"x-data-classification": "phi"})
    assert response.status_code == 200 and response.headers["x-gatehouse-deployment"] == us.name
    record = usage_wait(response.headers["x-request-id"])
    # The override replaces the certifications; the region is still the provider's.
    assert record.deployment_facts["certifications"] == ["hipaa_baa", "soc2"]
    assert record.deployment_facts["region"] == "us"


def test_dry_run_names_the_requirement_that_removed_each_deployment(demo, spread_route, client):
    us, eu = spread_route
    client.force_login(demo.owner)
    response = client.post(
        reverse("routing:dry-run"),
        {"request": '{"model": "assistant", "messages": [{"role": "user", "content": "mail jane@example.com"}]}'},
        **HTMX,
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "fails the pii requirement `region in [eu]` (region us)" in page
    assert eu.name in page
    response = client.post(
        reverse("routing:dry-run"),
        {
            "request": '{"model": "assistant", "messages": [{"role": "user", "content": "hi"}]}',
            "classification": "phi",
        },
        **HTMX,
    )
    page = response.content.decode()
    assert "no_compliant_model" in page
    assert "fails the phi requirement `certifications include hipaa_baa` (certifications [soc2])" in page
    assert "fails the phi requirement `certifications include hipaa_baa` (certifications [gdpr_dpa, soc2])" in page


def test_a_cascade_whose_layers_all_lack_the_agreement_is_403_naming_it(demo, spread_route):
    us, eu = spread_route
    other = model_card("facts-other")
    extra = sim_deployment(other, "facts-other@us")
    compliance_facts_set(provider=extra.provider, region="us", certifications=["soc2"], retention_days=30)
    policy(
        demo.org,
        demo.owner,
        routes=[
            {
                "name": "layered",
                "kind": "cascade",
                "layers": [{"model": "facts-model"}, {"model": "facts-other"}],
            }
        ],
        requirements={"phi": ["certifications include hipaa_baa", "retention_days <= 0"]},
        settings={"unlisted_max_class": ""},
    )
    response = chat(demo, "layered", headers={"x-data-classification": "phi"})
    assert response.status_code == 403
    message = response.json()["error"]["message"]
    assert "`certifications include hipaa_baa`" in message and "retention_days" not in message
    # With the agreement in place on one layer's deployment, its retention is what is missing.
    compliance_facts_set(deployment=extra, certifications=["hipaa_baa"])
    gateway_sync()
    message = chat(demo, "layered", headers={"x-data-classification": "phi"}).json()["error"]["message"]
    assert "`retention_days <= 0`" in message and "`certifications include hipaa_baa`" in message
