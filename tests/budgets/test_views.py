"""Budget console pages: the tree with bars and inline HTMX editing, read-only for
finance, hidden from members; period history with the hold ledger; the alert
banner on every page; alert settings; bounded query counts."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.urls import reverse

from budgets import services
from budgets.models import BudgetAlert, BudgetCounter, BudgetHold, HoldStatus, usd_to_units
from budgets.periods import period_bounds, zone_of

HTMX = {"HTTP_HX_REQUEST": "true"}
TREE = "/budgets/"


@pytest.fixture
def finance(world):
    from console import services as console_services

    user = console_services.user_create(username="fin-b", email="fin@b.test")
    console_services.membership_set(organization=world.org, user=user, role="finance", actor=world.owner)
    return user


def signed_in(client, user):
    client.force_login(user)
    return client


def current_counter(budget, spent: str, held: str = "0") -> BudgetCounter:
    start, end = period_bounds(budget.period, datetime.now(UTC), zone_of(budget.organization.time_zone))
    return BudgetCounter.objects.create(
        budget=budget,
        period_start=start,
        period_end=end,
        limit_units=budget.amount_units,
        spent_units=usd_to_units(Decimal(spent)),
        held_units=usd_to_units(Decimal(held)),
    )


def test_tree_shows_every_level_with_utilization_and_reset(client, world):
    team_budget = services.budget_create(organization=world.org, scope="team", scope_id=world.team.id, amount="100")
    services.budget_create(organization=world.org, scope="key", scope_id=world.key.id, amount="10", period="daily")
    services.rate_limit_set(organization=world.org, scope="user", scope_id=world.member.id, rpm=60)
    current_counter(team_budget, spent="42.5", held="7.5")
    response = signed_in(client, world.owner).get(TREE)
    assert response.status_code == 200
    html = response.content.decode()
    for node in (
        f"organization-{world.org.id}",
        f"team-{world.team.id}",
        f"user-{world.member.id}",
        f"key-{world.key.id}",
    ):
        assert f'data-node="{node}"' in html
    assert "$42.5000" in html and "$7.5000" in html and "$50.0000" in html  # spent, held, remaining
    assert "43% spent, 8% held" in html
    assert "60 req/min" in html
    assert 'hx-get="/budgets/' in html and "Create budget" in html


def test_inline_edit_swaps_the_row_and_validates(client, world):
    budget = services.budget_create(organization=world.org, scope="team", scope_id=world.team.id, amount="100")
    client = signed_in(client, world.owner)
    edit_url = reverse("budgets:budget-edit", args=[budget.id]) + "?depth=2"
    form = client.get(edit_url, **HTMX)
    assert form.status_code == 200
    assert 'class="budget-row edit-row"' in form.content.decode() and "<html" not in form.content.decode()
    assert 'value="100"' in form.content.decode()  # the amount as written, not 1E+2
    saved = client.post(edit_url, {"amount": "250.25", "thresholds": "60, 90", "hard": ""}, **HTMX)
    assert saved.status_code == 200
    html = saved.content.decode()
    assert "$250.25" in html and "saved" in html and "soft" in html and "depth-2" in html
    budget.refresh_from_db()
    assert (budget.amount, budget.hard, budget.thresholds) == (Decimal("250.25"), False, [60, 90])
    bad = client.post(edit_url, {"amount": "-1", "thresholds": "x"}, **HTMX)
    assert bad.status_code == 400 and "errorlist" in bad.content.decode()


def test_finance_reads_without_editing_and_members_are_kept_out(client, world, finance):
    budget = services.budget_create(organization=world.org, scope="team", scope_id=world.team.id, amount="100")
    client = signed_in(client, finance)
    page = client.get(TREE)
    assert page.status_code == 200
    assert "Create budget" not in page.content.decode() and ">Edit<" not in page.content.decode()
    assert client.post(reverse("budgets:budget-edit", args=[budget.id]), {"amount": "1"}).status_code == 403
    assert client.post(reverse("budgets:budget-archive", args=[budget.id])).status_code == 403
    assert client.get(reverse("budgets:budget-history", args=[budget.id])).status_code == 200
    member = signed_in(client, world.member)
    assert member.get(TREE).status_code == 403


def test_create_and_archive_from_the_console(client, world):
    client = signed_in(client, world.owner)
    response = client.post(
        reverse("budgets:budget-create"),
        {"target": f"key:{world.key.id}", "amount": "12.50", "period": "weekly", "hard": "on", "thresholds": "50, 100"},
    )
    assert response.status_code == 302
    budget = world.org.budgets.get()
    assert (budget.scope, budget.scope_id, budget.amount, budget.period) == (
        "key",
        world.key.id,
        Decimal("12.5"),
        "weekly",
    )
    duplicate = client.post(
        reverse("budgets:budget-create"),
        {"target": f"key:{world.key.id}", "amount": "1", "period": "weekly", "thresholds": ""},
    )
    assert duplicate.status_code == 400 and "has a weekly budget already" in duplicate.content.decode()
    assert client.post(reverse("budgets:budget-archive", args=[budget.id])).status_code == 302
    budget.refresh_from_db()
    assert budget.archived_at is not None


def test_history_shows_periods_and_the_hold_ledger(client, world):
    budget = services.budget_create(organization=world.org, scope="key", scope_id=world.key.id, amount="10")
    counter = current_counter(budget, spent="1.5")
    BudgetCounter.objects.create(
        budget=budget,
        period_start=datetime(2024, 1, 1, tzinfo=UTC),
        period_end=datetime(2024, 2, 1, tzinfo=UTC),
        spent_units=usd_to_units(Decimal(9)),
    )
    for request_id, status in (("req_done", HoldStatus.SETTLED), ("req_lost", HoldStatus.EXPIRED)):
        BudgetHold.objects.create(
            request_id=request_id,
            organization_id=world.org.id,
            counters=[counter.ident],
            amount_units=usd_to_units(Decimal("0.5")),
            status=status,
            actual_units=usd_to_units(Decimal("0.25")) if status == HoldStatus.SETTLED else None,
            created_at=counter.period_start,
            expires_at=counter.period_start,
        )
    html = signed_in(client, world.owner).get(reverse("budgets:budget-history", args=[budget.id])).content.decode()
    assert "2024-01-01" in html and "$9.0000" in html and "current" in html
    assert "req_lost" in html and ">expired<" in html and ">settled<" in html and "$0.250000" in html


def test_alert_banner_on_every_page_until_dismissed(client, world, finance):
    budget = services.budget_create(organization=world.org, scope="organization", scope_id=world.org.id, amount="100")
    start, end = period_bounds(budget.period, datetime.now(UTC), zone_of(world.org.time_zone))
    alert = BudgetAlert.objects.create(
        budget=budget,
        organization_id=world.org.id,
        period_start=start,
        period_end=end,
        threshold=80,
        spent_units=usd_to_units(Decimal(81)),
        limit_units=usd_to_units(Decimal(100)),
    )
    client = signed_in(client, finance)
    for url in ("/", "/keys/", TREE):
        html = client.get(url).content.decode()
        assert 'data-testid="budget-alerts"' in html and "passed 80%" in html and "$81.00 of $100.00" in html
    assert 'data-testid="budget-alerts"' not in signed_in(client, world.member).get("/").content.decode()
    client = signed_in(client, finance)
    assert client.post(reverse("budgets:alert-dismiss", args=[alert.id]), {"next": "https://evil.test/"}).url == TREE
    assert 'data-testid="budget-alerts"' not in client.get("/").content.decode()


def test_alert_settings_generate_and_show_the_secret_once(client, world, finance):
    client = signed_in(client, world.owner)
    response = client.post(
        reverse("budgets:alert-settings"),
        {"webhook_url": "https://hooks.example.com/x", "emails": "a@b.test, c@d.test"},
    )
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    assert 'data-testid="webhook-secret">whsec_' in response.content.decode()
    again = client.get(reverse("budgets:alert-settings")).content.decode()
    assert "whsec_" not in again and "A signing secret is stored." in again
    assert signed_in(client, finance).post(reverse("budgets:alert-settings"), {}).status_code == 403


def test_tree_query_count_does_not_grow_with_teams_and_keys(client, world, django_assert_max_num_queries):
    from console import services as console_services

    services.budget_create(organization=world.org, scope="team", scope_id=world.team.id, amount="1")
    client = signed_in(client, world.owner)
    client.get(TREE)
    with django_assert_max_num_queries(30) as small:
        assert client.get(TREE).status_code == 200
    for i in range(6):
        team = console_services.team_create(organization=world.org, name=f"T{i}", actor=world.owner)
        console_services.team_member_add(team=team, user=world.member, actor=world.owner)
        key = console_services.api_key_create(
            organization=world.org, name=f"k{i}", team=team, user=world.member, actor=world.owner
        ).key
        services.budget_create(organization=world.org, scope="key", scope_id=key.id, amount="1")
        services.budget_create(organization=world.org, scope="team", scope_id=team.id, amount="1")
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert client.get(TREE).status_code == 200


def test_store_failure_policy_is_set_by_managers_and_shown_to_finance(client, world, finance):
    from budgets.models import BudgetPolicy
    from budgets.selectors import budget_policy_of

    page = signed_in(client, world.owner).get(reverse("budgets:alert-settings")).content.decode()
    assert "When the budget store is unavailable" in page
    assert 'value="closed"' in page and "checked" in page.split('value="closed"')[1].split(">")[0]
    response = client.post(reverse("budgets:store-policy"), {"on_store_failure": "open"})
    assert response.status_code == 302 and response.url == reverse("budgets:alert-settings")
    assert budget_policy_of(organization_id=world.org.id) == "open"
    assert client.post(reverse("budgets:store-policy"), {"on_store_failure": "sometimes"}).status_code == 302
    assert budget_policy_of(organization_id=world.org.id) == "open"  # invalid input changed nothing
    reader = signed_in(client, finance)
    assert "Serve and record it without a hold" in reader.get(reverse("budgets:alert-settings")).content.decode()
    assert reader.post(reverse("budgets:store-policy"), {"on_store_failure": "closed"}).status_code == 403
    assert BudgetPolicy.objects.get(organization=world.org).on_store_failure == "open"
