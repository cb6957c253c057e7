"""Budgets and rate limits as config-as-code: export, apply, idempotence, prune,
errors that name the entry."""

from __future__ import annotations

from decimal import Decimal

import pytest
import yaml

from budgets import services
from budgets.models import Budget, RateLimit
from gatehouse.config import ConfigError, config_apply, config_export


def document(sections=("budgets", "rate_limits")) -> dict:
    return yaml.safe_load(config_export(sections=sections))


def test_export_then_apply_is_a_no_op_and_names_targets_not_ids(world):
    services.budget_create(
        organization=world.org,
        scope="team",
        scope_id=world.team.id,
        amount="500",
        name="Research monthly",
        thresholds=[50, 90],
    )
    services.budget_create(
        organization=world.org, scope="key", scope_id=world.key.id, amount="12.5", period="daily", hard=False
    )
    services.budget_create(
        organization=world.org, scope="organization", scope_id=world.org.id, amount="1000", period="lifetime"
    )
    services.rate_limit_set(organization=world.org, scope="user", scope_id=world.member.id, rpm=60, tpm=90000)
    exported = document()
    research = next(e for e in exported["budgets"] if e["name"] == "Research monthly")
    assert research == {
        "name": "Research monthly",
        "organization": "budget-org",
        "scope": "team",
        "target": "Research",
        "amount": "500",
        "period": "monthly",
        "hard": True,
        "thresholds": [50, 90],
    }
    key_entry = next(e for e in exported["budgets"] if e["scope"] == "key")
    assert key_entry["target"] == world.key.prefix and key_entry["amount"] == "12.5"
    assert "target" not in next(e for e in exported["budgets"] if e["scope"] == "organization")
    assert exported["rate_limits"][0]["target"] == "member-b"
    plan = config_apply(exported, source="budgets.yaml")
    assert not plan.has_changes


def test_apply_creates_updates_and_prunes(world):
    old = services.budget_create(
        organization=world.org, scope="key", scope_id=world.other_key.id, amount="1", name="old one"
    )
    text = f"""
budgets:
- name: Team cap
  organization: budget-org
  scope: team
  target: Research
  amount: "250.75"
  period: weekly
rate_limits:
- name: key limit
  organization: budget-org
  scope: key
  target: {world.key.prefix}
  rpm: 30
"""
    plan = config_apply(yaml.safe_load(text), source="f.yaml", prune=True)
    assert plan.count("create") == 2 and plan.count("prune") == 1
    budget = Budget.objects.get(name="Team cap", archived_at__isnull=True)
    assert (budget.scope_id, budget.amount, budget.period, budget.hard) == (
        world.team.id,
        Decimal("250.75"),
        "weekly",
        True,
    )
    old.refresh_from_db()
    assert old.archived_at is not None
    assert RateLimit.objects.get(name="key limit").rpm == 30
    changed = yaml.safe_load(text.replace('"250.75"', '"300"').replace("rpm: 30", "rpm: 40"))
    plan = config_apply(changed, source="f.yaml")
    assert plan.count("update") == 2
    assert Budget.objects.get(pk=budget.pk).amount == Decimal(300)


def test_errors_name_the_entry_and_nothing_is_applied(world):
    text = """
budgets:
- name: a
  organization: budget-org
  scope: team
  target: Nobody
  amount: "1"
- name: b
  organization: nowhere
  scope: organization
  amount: "1"
- name: c
  organization: budget-org
  scope: organization
  amount: 1.5
  period: yearly
rate_limits:
- name: d
  scope: team
  target: Research
  rpm: 5
"""
    with pytest.raises(ConfigError) as caught:
        config_apply(yaml.safe_load(text), source="bad.yaml")
    problems = "\n".join(caught.value.problems)
    assert "budgets[0].target: unknown team 'Nobody'" in problems
    assert "budgets[1].organization: unknown organization 'nowhere'" in problems
    assert "budgets[2].amount:" in problems and "budgets[2].period:" in problems
    assert "rate_limits[0].organization: required for a team limit" in problems
    assert not Budget.objects.exists() and not RateLimit.objects.exists()


def test_store_failure_policies_export_apply_and_prune(world):
    from budgets.models import BudgetPolicy

    plan = config_apply(
        {"budget_policies": [{"organization": "budget-org", "on_store_failure": "open"}]}, source="p.yaml"
    )
    assert [c.action for c in plan.changes] == ["create"]
    assert BudgetPolicy.objects.get(organization=world.org).on_store_failure == "open"
    exported = document(sections=("budget_policies",))
    assert exported["budget_policies"] == [{"organization": "budget-org", "on_store_failure": "open"}]
    assert [c.action for c in config_apply(exported, source="p.yaml").changes] == ["unchanged"]
    with pytest.raises(ConfigError) as caught:
        config_apply(
            {"budget_policies": [{"organization": "budget-org", "on_store_failure": "maybe"}]}, source="bad.yaml"
        )
    assert any(p.startswith("budget_policies[0].on_store_failure:") for p in caught.value.problems)
    config_apply({"budget_policies": []}, source="p.yaml", prune=True)
    assert BudgetPolicy.objects.get(organization=world.org).on_store_failure == "closed"
