"""Guard policies and recognizers as config-as-code: export, apply, round trip, prune, errors."""

from __future__ import annotations

import pytest
import yaml

from gatehouse.config import ConfigError, config_apply, config_export
from guardrails import services
from guardrails.models import GuardPolicy, GuardRecognizer

SECTIONS = ("guard_policies", "guard_recognizers")


def document() -> dict:
    return yaml.safe_load(config_export(sections=SECTIONS))


def test_export_then_apply_round_trips(tenant):
    slug = tenant.org.slug
    services.policy_set(
        organization=tenant.org, document={"pii": {"*": {"EMAIL": "mask"}, "pci": {"CREDIT_CARD": "block"}}}
    )
    services.policy_set(
        organization=tenant.org, team=tenant.team, document={"injection": {"threshold": 0.7, "action": "block"}}
    )
    services.policy_set(organization=tenant.org, key=tenant.key, document={"output": {"secrets": "block"}})
    services.recognizer_create(
        organization=tenant.org, entity="EMPLOYEE_ID", pattern=r"\bEMP-\d{6}\b", context="employee, staff"
    )
    exported = document()
    names = [entry["name"] for entry in exported["guard_policies"]]
    assert names == sorted([slug, f"{slug}/team:Legal", f"{slug}/key:{tenant.key.prefix}"])
    assert exported["guard_recognizers"] == [
        {
            "name": f"{slug}/EMPLOYEE_ID",
            "organization": slug,
            "entity": "EMPLOYEE_ID",
            "pattern": r"\bEMP-\d{6}\b",
            "checksum": "",
            "context": ["employee", "staff"],
            "score": 0.8,
            "enabled": True,
        }
    ]
    plan = config_apply(exported, source="test")
    assert not plan.has_changes

    # Wipe and re-apply: the same state comes back.
    before = {(p.team_id, p.key_id): p.document for p in GuardPolicy.objects.all()}
    GuardPolicy.objects.all().delete()
    GuardRecognizer.objects.all().delete()
    config_apply(exported, source="test")
    assert {(p.team_id, p.key_id): p.document for p in GuardPolicy.objects.all()} == before
    assert GuardRecognizer.objects.get().context == "employee,staff"
    assert document() == exported


def test_apply_updates_and_prunes(tenant):
    slug = tenant.org.slug
    services.policy_set(organization=tenant.org, team=tenant.team, document={"pii": {"*": {"EMAIL": "mask"}}})
    desired = {
        "guard_policies": [{"name": slug, "organization": slug, "policy": {"pii": {"*": {"EMAIL": "redact"}}}}],
        "guard_recognizers": [],
    }
    plan = config_apply(desired, source="test", prune=True)
    assert {(c.name, c.action) for c in plan.changes} == {(slug, "create"), (f"{slug}/team:Legal", "prune")}
    assert [p.document for p in GuardPolicy.objects.all()] == [{"pii": {"*": {"EMAIL": "redact"}}}]


def test_errors_name_the_entry(tenant):
    slug = tenant.org.slug
    bad = {
        "guard_policies": [
            {"name": slug, "organization": slug, "policy": {"pii": {"*": {"EMAIL": "explode"}}}},
            {"name": "nope", "organization": "nope"},
            {"name": f"{slug}/team:Ghosts", "organization": slug, "team": "Ghosts"},
        ],
        "guard_recognizers": [{"name": f"{slug}/X", "organization": slug, "entity": "X", "pattern": "a", "score": 5}],
    }
    with pytest.raises(ConfigError) as caught:
        config_apply(bad, source="guard.yaml")
    text = str(caught.value)
    assert "guard_policies[0].policy: pii.*.EMAIL" in text
    assert "guard_policies[1].organization" in text
    assert "guard_policies[2].team" in text
    assert "guard_recognizers[0].score" in text
    assert not GuardPolicy.objects.exists()
