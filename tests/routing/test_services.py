"""Governance: every change is an immutable version with author, time and diff; four
eyes holds changes until a second admin approves; any version can be rolled back to."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from audit.models import AuditEvent
from console.models import ChangeEvent
from routing import services
from routing.models import PolicyVersion
from routing.selectors import policy_live

ROUTE = {"name": "fast", "targets": [{"model": "rt-model", "weight": 2}]}


def test_each_change_is_an_immutable_version_with_author_and_diff(org, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        v1 = services.route_put(organization=org.org, actor=org.owner, route=ROUTE)
    assert v1.number == 1 and v1.state == "live" and v1.author == org.owner
    assert "+- name: fast" in v1.diff and v1.diff.startswith("--- empty")
    assert ChangeEvent.objects.filter(topic="routing", ref=str(org.org.id)).exists()
    assert AuditEvent.objects.filter(action="routing.policy.propose", target="v1").exists()
    v2 = services.route_put(
        organization=org.org, actor=org.admin, route={**ROUTE, "strategy": "round_robin"}, replaces="fast"
    )
    assert v2.parent == v1 and "-  strategy: weighted" in v2.diff and "+  strategy: round_robin" in v2.diff
    v1.refresh_from_db()
    assert v1.state == "superseded"
    v1.document = {}
    with pytest.raises(ValueError):
        v1.save()
    with pytest.raises(ValidationError, match="Nothing changed"):
        services.policy_propose(organization=org.org, actor=org.owner, document=v2.document)


def test_invalid_documents_name_every_problem(org):
    with pytest.raises(ValidationError) as excinfo:
        services.policy_propose(
            organization=org.org,
            actor=org.owner,
            document={
                "routes": [{"name": "a", "targets": [{"model": "no-such-model"}], "strategy": "fastest"}],
                "rules": [{"name": "r", "route": "nowhere", "pattern": "("}],
            },
        )
    text = " ".join(excinfo.value.messages)
    assert "routes[0].strategy" in text and "rules[0].pattern" in text
    with pytest.raises(ValidationError) as excinfo:
        services.policy_propose(
            organization=org.org,
            actor=org.owner,
            document={
                "routes": [{"name": "a", "targets": [{"model": "no-such-model"}]}],
                "rules": [{"name": "r", "route": "nowhere"}],
            },
        )
    text = " ".join(excinfo.value.messages)
    assert "unknown model 'no-such-model'" in text and "'nowhere' is neither a route nor a model" in text


def test_four_eyes_requires_a_second_admin(org):
    services.policy_settings_put(organization=org.org, actor=org.owner, require_approval=True)
    proposal = services.route_put(organization=org.org, actor=org.owner, route=ROUTE)
    assert proposal.state == "pending"
    assert policy_live(organization=org.org).document["routes"] == []
    with pytest.raises(PermissionDenied):
        services.policy_approve(version=proposal, actor=org.owner)  # its author
    with pytest.raises(PermissionDenied):
        services.policy_approve(version=proposal, actor=org.member)  # not an admin
    services.policy_approve(version=proposal, actor=org.admin)
    proposal.refresh_from_db()
    assert proposal.state == "live" and proposal.decided_by == org.admin
    assert policy_live(organization=org.org).document["routes"][0]["name"] == "fast"


def test_rejecting_a_proposal_rejects_those_built_on_it(org):
    services.policy_settings_put(organization=org.org, actor=org.owner, require_approval=True)
    first = services.route_put(organization=org.org, actor=org.owner, route=ROUTE)
    second = services.rule_put(organization=org.org, actor=org.owner, rule={"name": "r", "route": "fast"})
    assert second.parent == first
    services.policy_reject(version=first, actor=org.admin, note="not now")
    assert set(
        PolicyVersion.objects.filter(number__in=[first.number, second.number]).values_list("state", flat=True)
    ) == {"rejected"}


def test_rollback_creates_a_new_version_with_the_old_document(org):
    v1 = services.route_put(organization=org.org, actor=org.owner, route=ROUTE)
    services.route_remove(organization=org.org, actor=org.owner, name="fast")
    v3 = services.policy_rollback(version=v1, actor=org.admin)
    assert v3.number == 3 and v3.rollback_of == 1 and v3.state == "live" and v3.document == v1.document
    assert AuditEvent.objects.filter(action="routing.policy.rollback", target="v3").exists()


def test_edits_rename_references_move_rules_and_toggle_the_matrix(org):
    services.route_put(organization=org.org, actor=org.owner, route=ROUTE)
    services.rule_put(organization=org.org, actor=org.owner, rule={"name": "one", "route": "fast"})
    services.rule_put(organization=org.org, actor=org.owner, rule={"name": "two", "route": "rt-model"})
    services.route_put(organization=org.org, actor=org.owner, route={**ROUTE, "name": "quick"}, replaces="fast")
    document = policy_live(organization=org.org).document
    assert document["rules"][0]["route"] == "quick"
    services.rule_move(organization=org.org, actor=org.owner, name="two", offset=-1)
    assert [r["name"] for r in policy_live(organization=org.org).document["rules"]] == ["two", "one"]
    services.matrix_set(organization=org.org, actor=org.owner, subject="rt-model", data_class="phi", approved=False)
    approved = policy_live(organization=org.org).document["matrix"]["rt-model"]
    assert "phi" not in approved and "public" in approved


def test_breaker_settings_are_validated_and_published(org, django_capture_on_commit_callbacks):
    with pytest.raises(ValidationError):
        services.deployment_policy_set(deployment=org.deployment, failure_threshold=0, failure_window=1, cooldown=1)
    with django_capture_on_commit_callbacks(execute=True):
        services.deployment_policy_set(deployment=org.deployment, failure_threshold=3, failure_window=10, cooldown=5)
    assert ChangeEvent.objects.filter(topic="routing", ref=f"deployment:{org.deployment.id}").exists()


def test_data_classes_are_editable_per_organization_with_a_rank_order(org):
    classes = [
        {"name": "public", "label": "Public"},
        {"name": "internal", "label": "Internal"},
        {"name": "trade-secret", "label": "Trade secret"},
        {"name": "confidential", "label": "Confidential"},
        {"name": "pii", "label": "PII"},
        {"name": "pci", "label": "PCI"},
        {"name": "phi", "label": "PHI"},
        {"name": "restricted", "label": "Restricted"},
    ]
    ranked = [{**c, "rank": rank} for rank, c in enumerate(classes)]
    services.policy_settings_put(organization=org.org, actor=org.owner, data_classes=ranked)
    names = [c["name"] for c in policy_live(organization=org.org).document["data_classes"]]
    assert names == [c["name"] for c in classes]
    with pytest.raises(ValidationError, match="cannot be removed"):
        services.policy_settings_put(organization=org.org, actor=org.owner, data_classes=ranked[:-1])
