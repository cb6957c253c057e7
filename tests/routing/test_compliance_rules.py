"""The compliance matrix's attribute rules as policy: canonical sentences, problems named,
the vocabulary checked, changes as versions behind four-eyes approval, YAML round trips,
the matrix page edits them, and the compiled policy removes what fails them."""

from __future__ import annotations

import pytest
import yaml
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from gatehouse.config import config_apply, config_export
from providers.facts import facts_resolve
from providers.facts_services import certification_term_put, compliance_facts_set
from providers.snapshot import catalog_build
from routing import services
from routing.engine.snapshot import routing_build
from routing.policy.document import PolicyError, policy_empty, policy_normalize
from routing.policy.requirements import requirement_parse
from routing.selectors import policy_live


def test_requirements_are_canonical_sentences_and_problems_name_their_place():
    document = policy_empty()
    document["requirements"] = {
        "phi": "Certifications include HIPAA_BAA",
        "pii": ["region in [us, eu]", "trains_on_data == false", "region in [eu,us]"],
    }
    normalized = policy_normalize(document)
    assert normalized["requirements"] == {
        "pii": ["region in [eu, us]", "trains_on_data = false"],
        "phi": ["certifications include hipaa_baa"],
    }
    assert list(normalized["requirements"]) == ["pii", "phi"]  # in the classes' rank order
    assert "requirements" not in policy_normalize(policy_empty())  # older documents stay as they were
    document["requirements"] = {"pii": ["colour = red", "retention_days <= -1"], "secret": ["region in [eu]"]}
    with pytest.raises(PolicyError) as problem:
        policy_normalize(document)
    assert [p.split(":")[0] for p in problem.value.problems] == [
        "requirements.pii[0]",
        "requirements.pii[1]",
        "requirements.secret",
    ]


def test_an_unknown_fact_never_meets_a_requirement():
    unknown = facts_resolve(deployment=None, provider=None)
    for text in ("region in [eu]", "retention_days <= 30", "trains_on_data = false", "certifications include soc2"):
        assert not requirement_parse(text).met(unknown)
    known = facts_resolve(
        deployment={"retention_days": 0},
        provider={"region": "eu", "trains_on_data": False, "certifications": ["soc2", "iso27001"]},
    )
    assert requirement_parse("retention_days <= 0").met(known)
    assert requirement_parse("certifications include [iso27001, soc2]").met(known)
    assert not requirement_parse("certifications include [hipaa_baa, soc2]").met(known)
    assert requirement_parse("trains_on_data = false").met(known)
    assert not requirement_parse("zero_data_retention = false").met(known)


def test_requirements_name_only_certifications_of_the_vocabulary(org):
    with pytest.raises(ValidationError) as problem:
        services.requirements_set(
            organization=org.org, actor=org.owner, data_class="phi", requirements=["certifications include nhs_dspt"]
        )
    assert "nhs_dspt" in str(problem.value)
    certification_term_put(organization=org.org, slug="nhs_dspt", label="NHS DSP Toolkit")
    version = services.requirements_set(
        organization=org.org, actor=org.owner, data_class="phi", requirements=["certifications include nhs_dspt"]
    )
    assert version.document["requirements"] == {"phi": ["certifications include nhs_dspt"]}


def test_a_requirement_change_is_a_version_that_waits_for_a_second_admin(org):
    services.policy_settings_put(organization=org.org, actor=org.owner, require_approval=True)
    proposal = services.requirements_set(
        organization=org.org, actor=org.owner, data_class="pii", requirements=["region in [eu]"]
    )
    assert proposal.state == "pending"
    assert "requirements" not in policy_live(organization=org.org).document
    assert "+requirements:" in proposal.diff and "+  - region in [eu]" in proposal.diff
    with pytest.raises(PermissionDenied):
        services.policy_approve(version=proposal, actor=org.owner)
    services.policy_approve(version=proposal, actor=org.admin)
    assert policy_live(organization=org.org).document["requirements"] == {"pii": ["region in [eu]"]}


def test_the_compiled_policy_removes_deployments_that_fail_a_requirement(org):
    compliance_facts_set(provider=org.deployment.provider, region="us")
    services.policy_propose(
        organization=org.org,
        actor=org.owner,
        summary="eu only for pii",
        document={**policy_empty(), "requirements": {"pii": ["region in [eu]"]}},
    )
    policy = routing_build(catalog_build(), organization_id=org.org.id).policy(org.org.id)
    route = policy.destination("rt-model")
    assert [c.deployment.name for c in route.compliant("internal")] == ["rt-model@sim"]
    assert route.compliant("pii") == ()
    assert policy.detect_needed  # requirements make the detector run
    compliance_facts_set(deployment=org.deployment, region="eu")
    policy = routing_build(catalog_build(), organization_id=org.org.id).policy(org.org.id)
    assert [c.deployment.name for c in policy.destination("rt-model").compliant("pii")] == ["rt-model@sim"]


def test_requirements_round_trip_in_yaml(org):
    services.requirements_set(
        organization=org.org,
        actor=org.owner,
        data_class="phi",
        requirements=["certifications include hipaa_baa", "retention_days <= 0"],
    )
    text = config_export(sections=["routing"])
    document = yaml.safe_load(text)
    assert document["routing"][0]["requirements"] == {
        "phi": ["certifications include hipaa_baa", "retention_days <= 0"]
    }
    assert not config_apply(document, source="test").has_changes
    document["routing"][0]["requirements"]["pii"] = ["region in [eu]"]
    plan = config_apply(document, source="test")
    assert [c.detail for c in plan.changes if c.action == "update"] == [("requirements",)]
    assert policy_live(organization=org.org).document["requirements"]["pii"] == ["region in [eu]"]
    assert config_export(sections=["routing"]) == config_export(sections=["routing"])
    assert not config_apply(yaml.safe_load(config_export(sections=["routing"])), source="test").has_changes


def test_the_matrix_page_shows_and_edits_requirements(client, org):
    client.force_login(org.owner)
    response = client.post(
        reverse("routing:requirements"),
        {"data_class": "pii", "requirements": "region in [eu]\n\ntrains_on_data = false\n"},
    )
    assert response.status_code == 302
    assert policy_live(organization=org.org).document["requirements"] == {
        "pii": ["region in [eu]", "trains_on_data = false"]
    }
    page = client.get(reverse("routing:matrix")).content.decode()
    assert "Requirements per class" in page and "trains_on_data = false" in page
    client.post(reverse("routing:requirements"), {"data_class": "pii", "requirements": "colour = red"})
    assert policy_live(organization=org.org).document["requirements"]["pii"] == [
        "region in [eu]",
        "trains_on_data = false",
    ]
    client.force_login(org.member)
    assert client.post(reverse("routing:requirements"), {"data_class": "pii", "requirements": ""}).status_code == 403
