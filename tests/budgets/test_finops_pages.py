"""FinOps pages: figures equal the raw records, members see their own keys, filters in the
URL, CSV for every table, clear errors on bad input, bounded query counts."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db.models import Sum

from budgets.models import UsageRecord
from tests.budgets.finops_data import seed_small

pytestmark = pytest.mark.django_db(transaction=True)

PAGES = [
    "/finops/",
    "/finops/spend/",
    "/finops/unit-economics/",
    "/finops/performance/",
    "/finops/outcomes/",
    "/finops/savings/",
    "/finops/on-prem/",
]


@pytest.fixture
def finance(world):
    from console import services as console_services

    user = console_services.user_create(username="fin-f", email="fin@f.test")
    console_services.membership_set(organization=world.org, user=user, role="finance", actor=world.owner)
    return user


@pytest.fixture
def seeded(world):
    return seed_small(world)


def read_csv(response) -> list[dict]:
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.content.decode())))


@pytest.mark.parametrize("url", PAGES)
def test_every_page_renders_for_finance_within_a_fixed_number_of_queries(
    client, world, finance, seeded, url, django_assert_max_num_queries
):
    client.force_login(finance)
    with django_assert_max_num_queries(40):
        response = client.get(url)
    assert response.status_code == 200
    assert b"plotly.min.js" in response.content or url.endswith("on-prem/")
    partial = client.get(url, HTTP_HX_REQUEST="true")
    assert partial.status_code == 200
    assert b'id="finops-results"' in partial.content
    assert b"<html" not in partial.content


def test_explorer_totals_equal_the_raw_records_and_csv_matches(client, world, finance, seeded):
    client.force_login(finance)
    response = client.get("/finops/spend/", {"period": "90d", "group": "model", "format": "csv"})
    rows = read_csv(response)
    by_model = {row["Model used"]: Decimal(row["Cost"]) for row in rows}
    raw = dict(
        UsageRecord.objects.filter(organization_id=world.org.id)
        .values_list("model_used")
        .annotate(total=Sum("cost"))
        .values_list("model_used", "total")
    )
    assert set(by_model) == {"gpt-4o", "gpt-4o-mini", "llama-3-8b"}
    for model, cost in by_model.items():
        assert cost == sum(UsageRecord.objects.filter(model_used=model).values_list("cost", flat=True))
        assert abs(cost - Decimal(raw[model])) < Decimal("0.000001")
    assert sum(int(row["Requests"]) for row in rows) == 120


def test_explorer_filters_live_in_the_url_and_group_by_any_dimension(client, world, finance, seeded):
    client.force_login(finance)
    rows = read_csv(
        client.get("/finops/spend/", {"period": "90d", "group": "workflow", "f_model": "llama-3-8b", "format": "csv"})
    )
    assert [row["Workflow"] for row in rows] == ["summarize"]
    rows = read_csv(client.get("/finops/spend/", {"period": "90d", "group": "tag", "format": "csv"}))
    assert {row["Tag"] for row in rows} == {"beta", "(none)"}
    rows = read_csv(client.get("/finops/spend/", {"period": "90d", "group": "layer", "format": "csv"}))
    assert {row["Cascade layer"] for row in rows} == {"layer 0", "layer 1"}
    rows = read_csv(client.get("/finops/spend/", {"period": "90d", "group": "team", "format": "csv"}))
    assert [row["Team"] for row in rows] == [world.team.name]
    html = client.get("/finops/spend/", {"period": "90d", "group": "provider", "sort": "requests"}).content.decode()
    assert "groq" in html and "sort=-requests" in html


def test_bad_filters_get_a_clear_message_not_an_error(client, world, finance, seeded):
    client.force_login(finance)
    response = client.get("/finops/spend/", {"period": "custom", "start": "2026-02-10", "end": "2026-01-01"})
    assert response.status_code == 200
    assert b"must not lie before" in response.content
    response = client.get("/finops/spend/", {"f_team": "abc", "group": "nonsense"})
    assert response.status_code == 200
    assert b'role="alert"' in response.content
    assert client.get("/finops/spend/", {"format": "csv", "table": "nope"}).status_code == 400


def test_members_see_only_their_own_keys(client, world, seeded):
    client.force_login(world.member)
    rows = read_csv(client.get("/finops/spend/", {"period": "90d", "group": "key", "format": "csv"}))
    assert [row["Key"].split(" (")[0] for row in rows] == [world.key.name]
    html = client.get("/finops/").content.decode()
    assert "Budget burn" not in html


def test_sub_cent_amounts_keep_their_digits(client, world, finance):
    from budgets.rollups import usage_rollup_rebuild
    from budgets.usage import UsageSink

    usage_buffer = UsageSink()
    from tests.budgets.finops_data import usage_event

    usage_buffer.add(
        usage_event(org_id=world.org.id, key=world.key, at=datetime.now(UTC), model="llama-3-8b", tokens=(4000, 2500))
    )
    usage_buffer.flush()
    usage_rollup_rebuild()
    client.force_login(finance)
    html = client.get("/finops/spend/").content.decode()
    assert "$0.0004" in html
    assert "E-" not in html and "$0.00<" not in html


def test_unit_economics_computes_tc_per_million_from_input_and_output_rates(client, world, finance, seeded):
    client.force_login(finance)
    rows = read_csv(client.get("/finops/unit-economics/", {"period": "90d", "format": "csv", "table": "model"}))
    gpt = next(row for row in rows if row["Model used"] == "gpt-4o")
    # (1000 x 2.5 + 200 x 10) / 1200 tokens x 1M = 3.75
    assert Decimal(gpt["TC/1M"]) == Decimal("3.75")
    assert Decimal(gpt["Input share"]) == Decimal("55.5556")
    llama = next(row for row in rows if row["Model used"] == "llama-3-8b")
    # 400 cached tokens x (0.05 - 0.025) / 1M per request, 40 requests
    assert Decimal(llama["Cache savings"]) == Decimal("0.0004")


def test_performance_reports_percentiles_and_rates_from_rollups(client, world, finance, seeded):
    client.force_login(finance)
    rows = read_csv(client.get("/finops/performance/", {"period": "90d", "format": "csv"}))
    mini = next(row for row in rows if row["Model used"] == "gpt-4o-mini")
    assert 100 <= float(mini["TTFT p50"]) <= 158.5
    assert 630 <= float(mini["Latency p95"]) <= 1000
    assert float(mini["Error rate"]) == pytest.approx(10.0)
    assert float(mini["Fallback rate"]) == pytest.approx(20.0)
    # 200 output tokens over 680 ms of generation
    assert float(mini["Output tokens/s"]) == pytest.approx(200 / 0.68, rel=1e-3)


def test_overview_shows_spend_forecast_and_method(client, world, finance, seeded):
    from budgets import services

    services.budget_create(organization=world.org, scope="team", scope_id=world.team.id, amount="100")
    client.force_login(finance)
    html = client.get("/finops/").content.decode()
    assert "Forecast method" in html and "weekday" in html
    assert "Budget burn" in html
    rows = read_csv(client.get("/finops/", {"format": "csv", "table": "daily"}))
    assert rows and "Forecast" in rows[0]


def test_savings_compare_with_the_priciest_model_of_the_route(client, world, finance, seeded):
    from providers import services as provider_services  # noqa: F401

    client.force_login(finance)
    response = client.get("/finops/savings/", {"period": "90d", "format": "csv", "table": "cascade"})
    layers = {row["Layer"]: row for row in read_csv(response)}
    assert layers["layer 0"]["Requests"] == "80"
    assert layers["layer 1"]["Requests"] == "40"
    tiers = {
        row["Tier"]
        for row in read_csv(client.get("/finops/savings/", {"period": "90d", "format": "csv", "table": "tiers"}))
    }
    assert tiers == {"frontier", "mid", "open-weight"}


def test_on_prem_cost_model_is_editable_and_drives_break_even(client, world, finance, seeded):
    from budgets.models import FinOpsSettings

    client.force_login(finance)
    response = client.post(
        "/finops/on-prem/",
        {
            "baseline_model": "",
            "gpus": "2",
            "gpu_hourly_price": "1.5",
            "utilization": "50",
            "tokens_per_gpu_second": "1000",
            "operations_monthly": "100",
            "setup_cost": "1000",
        },
    )
    assert response.status_code == 302
    settings = FinOpsSettings.objects.get(organization=world.org)
    assert settings.gpus == 2
    bad = client.post("/finops/on-prem/", {"gpus": "2", "utilization": "250"})
    assert bad.status_code == 200 and b"between 1 and 100" in bad.content
    rows = read_csv(client.get("/finops/on-prem/", {"format": "csv"}))
    family = {row["Family"]: row for row in rows}
    assert "gpt-4o" in family and "gpt-4o-mini" in family
    assert family["gpt-4o"]["Playbook threshold"].startswith("below 5B")


def test_members_cannot_change_the_cost_model(client, world):
    client.force_login(world.member)
    assert client.post("/finops/on-prem/", {"gpus": "3"}).status_code == 403


def test_routing_savings_measure_against_the_priciest_model_of_the_route(client, world, finance, seeded):
    client.force_login(finance)
    rows = read_csv(client.get("/finops/savings/", {"period": "90d", "format": "csv", "table": "routes"}))
    support = next(row for row in rows if row["Route"] == "support")
    assert support["Baseline model"] == "gpt-4o"
    # 120 requests of 1000 in / 200 out at gpt-4o's 2.5 / 10 per 1M
    assert Decimal(support["On the baseline"]) == Decimal("0.54")
    # gpt-4o 0.18 + gpt-4o-mini 40 x 0.00027 + llama 40 x 0.000066
    assert Decimal(support["Actual"]) == Decimal("0.19344")
    assert Decimal(support["Saved"]) == Decimal("0.34656")


@pytest.mark.parametrize("dimension", ["model", "team", "workflow", "tag", "layer", "tier", "route", "status"])
def test_daily_rows_and_hourly_rows_give_the_same_answers(world, seeded, dimension):
    from budgets.finops import queries as q
    from budgets.selectors import organization_zone

    zone = organization_zone(world.org.id)
    today = datetime.now(UTC).astimezone(zone).date()
    window = q.Window(q.day_start(today.replace(day=1), zone), q.day_start(today, zone), zone, "")
    whole = q.Slice(q.Scope(organization_id=world.org.id), window)
    # A reader scoped to every key of the organization reads the hourly rows.
    every_key = q.Slice(q.Scope(organization_id=world.org.id, key_ids=(world.key.id, world.other_key.id)), window)
    assert whole._daily_plan(dimension) is not None and every_key._daily_plan(dimension) is None

    def key(rows):
        return sorted((str(r["group"] or ""), r["requests"], r["cost"], r["output_tokens"]) for r in rows)

    assert key(whole.grouped(dimension)) == key(every_key.grouped(dimension))
    assert key(whole.daily(dimension)) == key(every_key.daily(dimension))
    assert whole.totals() == every_key.totals()


def test_explorer_chart_data_as_a_table_and_csv_adds_up_to_the_groups(client, world, finance, seeded):
    client.force_login(finance)
    params = {"period": "90d", "group": "model"}
    series = read_csv(client.get("/finops/spend/", {**params, "format": "csv", "table": "series"}))
    groups = read_csv(client.get("/finops/spend/", {**params, "format": "csv", "table": "groups"}))
    assert len(series) == 90 and set(series[0]) == {"Day", "gpt-4o", "gpt-4o-mini", "llama-3-8b"}
    for group in groups:
        per_day = sum(Decimal(row[group["Model used"]] or "0") for row in series)
        assert per_day == Decimal(group["Cost"])
    html = client.get("/finops/spend/", params).content.decode()
    assert 'data-testid="table-series"' in html
