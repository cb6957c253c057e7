"""Budgets in the management API: owners and admins write, finance reads, members
see nothing; targets must be in the caller's organization; archived budgets keep
their period history; alert settings never show a stored secret."""

# ruff: noqa: F811 - the fixtures are imported from tests.budgets.helpers

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from budgets import services
from budgets.clock import SYSTEM_CLOCK as clock
from budgets.models import BudgetAlert, BudgetCounter, usd_to_units
from budgets.periods import zone_of
from tests.api.conftest import a, b, client_for, models  # noqa: F401

pytestmark = pytest.mark.django_db

BUDGETS = "/api/v1/budgets/"


def test_owner_creates_and_finance_reads_a_budget_with_its_current_period(a):
    owner = client_for(a.owner, a.org)
    response = owner.post(
        BUDGETS,
        {"scope": "team", "scope_id": a.team.id, "amount": "250.50", "period": "monthly", "thresholds": [75, 90]},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["amount"] == "250.5000000000" and body["hard"] is True and body["thresholds"] == [75, 90]
    assert body["name"] == f"Team {a.team.name} monthly"
    assert body["current"]["spent"] == "0.0000000000" and body["current"]["remaining"] == "250.5000000000"
    assert body["current"]["period_end"] is not None
    finance = client_for(a.finance, a.org)
    listed = finance.get(BUDGETS)
    assert listed.status_code == 200 and [row["id"] for row in listed.json()["results"]] == [body["id"]]
    assert (
        finance.post(BUDGETS, {"scope": "organization", "scope_id": a.org.id, "amount": "1"}, format="json").status_code
        == 403
    )
    assert client_for(a.member, a.org).get(BUDGETS).status_code == 403


def test_targets_must_belong_to_the_organization(a, b):
    admin = client_for(a.admin, a.org)
    for scope, scope_id in (
        ("team", b.team.id),
        ("key", b.member_key.id),
        ("user", b.owner.id),
        ("organization", b.org.id),
    ):
        response = admin.post(BUDGETS, {"scope": scope, "scope_id": scope_id, "amount": "1"}, format="json")
        assert response.status_code == 400, (scope, response.content)
        assert "scope_id" in response.json()
    duplicate = {"scope": "key", "scope_id": a.member_key.id, "amount": "1", "period": "daily"}
    assert admin.post(BUDGETS, duplicate, format="json").status_code == 201
    assert admin.post(BUDGETS, duplicate, format="json").status_code == 400
    assert client_for(b.owner, b.org).get(BUDGETS).json()["results"] == []


def test_update_archive_and_period_history(a):
    admin = client_for(a.admin, a.org)
    budget = services.budget_create(
        organization=a.org, scope="key", scope_id=a.member_key.id, amount="10", period="monthly"
    )
    BudgetCounter.objects.create(
        budget=budget,
        period_start=datetime(2025, 1, 1, tzinfo=UTC),
        period_end=datetime(2025, 2, 1, tzinfo=UTC),
        limit_units=usd_to_units(Decimal(10)),
        spent_units=usd_to_units(Decimal("9.25")),
    )
    changed = admin.patch(f"{BUDGETS}{budget.id}/", {"amount": "20", "hard": False}, format="json")
    assert changed.status_code == 200 and changed.json()["amount"] == "20.0000000000"
    assert changed.json()["hard"] is False
    periods = admin.get(f"{BUDGETS}{budget.id}/periods/").json()
    current = clock.now().astimezone(zone_of(a.org.time_zone)).date().replace(day=1).isoformat()
    assert [p["period_start"][:10] for p in periods] == [current, "2025-01-01"]
    assert periods[1]["spent"] == "9.2500000000"
    assert admin.delete(f"{BUDGETS}{budget.id}/").status_code == 204
    assert admin.get(BUDGETS).json()["results"] == []
    assert admin.get(f"{BUDGETS}{budget.id}/periods/").status_code == 404
    budget.refresh_from_db()
    assert budget.archived_at is not None and budget.counters.count() == 1


def test_rate_limits_are_set_replaced_and_scoped(a, b):
    admin = client_for(a.admin, a.org)
    created = admin.post(
        "/api/v1/rate-limits/", {"scope": "key", "scope_id": a.member_key.id, "rpm": 60}, format="json"
    )
    assert created.status_code == 201 and created.json()["rpm"] == 60
    replaced = admin.post(
        "/api/v1/rate-limits/", {"scope": "key", "scope_id": a.member_key.id, "tpm": 10000}, format="json"
    )
    assert replaced.json()["id"] == created.json()["id"]
    assert (replaced.json()["rpm"], replaced.json()["tpm"]) == (None, 10000)
    assert (
        admin.post(
            "/api/v1/rate-limits/", {"scope": "team", "scope_id": b.team.id, "rpm": 1}, format="json"
        ).status_code
        == 400
    )
    assert (
        admin.post(
            "/api/v1/rate-limits/", {"scope": "deployment", "scope_id": a.deployment.id, "rpm": 5}, format="json"
        ).status_code
        == 201
    )
    assert (
        admin.post(
            "/api/v1/rate-limits/", {"scope": "deployment", "scope_id": b.deployment.id, "rpm": 5}, format="json"
        ).status_code
        == 400
    )
    assert (
        admin.post("/api/v1/rate-limits/", {"scope": "user", "scope_id": a.member.id}, format="json").status_code == 400
    )  # neither rpm nor tpm
    assert client_for(b.admin, b.org).get("/api/v1/rate-limits/").json()["results"] == []
    assert admin.delete(f"/api/v1/rate-limits/{created.json()['id']}/").status_code == 204


def test_alert_settings_generate_a_secret_once_and_never_show_it_again(a):
    admin = client_for(a.admin, a.org)
    response = admin.post(
        "/api/v1/budget-alert-settings/",
        {"webhook_url": "https://hooks.example.com/budget", "emails": ["cfo@a.test"]},
        format="json",
    )
    assert response.status_code == 200, response.content
    secret = response.json()["webhook_secret"]
    assert secret.startswith("whsec_")
    shown = admin.get("/api/v1/budget-alert-settings/").json()
    assert shown == {
        "webhook_url": "https://hooks.example.com/budget",
        "has_webhook_secret": True,
        "emails": ["cfo@a.test"],
    }
    again = admin.post("/api/v1/budget-alert-settings/", {"webhook_url": "https://hooks.example.com/v2"}, format="json")
    assert "webhook_secret" not in again.json()  # the stored secret is kept, not regenerated
    assert client_for(a.finance, a.org).post("/api/v1/budget-alert-settings/", {}, format="json").status_code == 403
    assert admin.post("/api/v1/budget-alert-settings/", {"webhook_url": "ftp://x"}, format="json").status_code == 400


def test_alerts_are_listed_and_finance_can_dismiss_them(a):
    budget = services.budget_create(organization=a.org, scope="organization", scope_id=a.org.id, amount="5")
    now = clock.now()
    from budgets.periods import period_bounds, zone_of

    start, end = period_bounds("monthly", now, zone_of(a.org.time_zone))
    alert = BudgetAlert.objects.create(
        budget=budget,
        organization_id=a.org.id,
        period_start=start,
        period_end=end,
        threshold=80,
        spent_units=usd_to_units(Decimal(4)),
        limit_units=usd_to_units(5),
    )
    finance = client_for(a.finance, a.org)
    active = finance.get("/api/v1/budget-alerts/active/").json()
    assert [(row["id"], row["spent"], row["limit"]) for row in active] == [(alert.id, "4.0000000000", "5.0000000000")]
    assert finance.post(f"/api/v1/budget-alerts/{alert.id}/dismiss/").status_code == 200
    assert finance.get("/api/v1/budget-alerts/active/").json() == []
    assert len(finance.get("/api/v1/budget-alerts/").json()["results"]) == 1
