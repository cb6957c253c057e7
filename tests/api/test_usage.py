"""Usage: one filter definition for API and console, cursor pagination in a fixed
order, and summaries summed in SQL to exact decimals."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.http import QueryDict
from django.utils import timezone

from budgets.filters import UsageFilterSet
from budgets.models import UsageRecord
from budgets.selectors import usage_daily, usage_list, usage_summary
from console import services
from tests.api.conftest import T0, client_for, usage_event, usage_write

USAGE = "/api/v1/usage/"


def ids_of(response) -> set[str]:
    assert response.status_code == 200, response.content
    return {row["request_id"] for row in response.json()["results"]}


def test_each_filter_selects_the_right_records(a, usage):
    client = client_for(a.finance, a.org)
    every = {usage[n] for n in ("a1", "a2", "a3", "a4", "a5")}
    cases = [
        ({}, every),
        ({"since": (T0 + timedelta(days=1)).isoformat()}, {usage["a3"], usage["a4"], usage["a5"]}),
        ({"until": (T0 + timedelta(hours=1)).isoformat()}, {usage["a1"]}),
        ({"since": "2025-03-10T12:30:00Z", "until": "2025-03-11T13:00:00Z"}, {usage["a2"], usage["a3"]}),
        ({"model": "embed-test"}, {usage["a3"]}),
        ({"model": "gpt-test"}, every - {usage["a3"]}),
        ({"key": a.admin_key.id}, {usage["a3"]}),
        ({"team": a.team.id}, every - {usage["a3"]}),
        ({"user": a.member.id}, every - {usage["a3"]}),
        ({"status": "error"}, {usage["a4"]}),
        ({"status": "ok"}, every - {usage["a4"]}),
        ({"endpoint": "embeddings"}, {usage["a3"]}),
        ({"workflow": "triage"}, {usage["a1"], usage["a4"]}),
        ({"tag": "alpha"}, {usage["a1"]}),
        ({"tag": "Alpha"}, {usage["a2"]}),
        ({"tag": "alp"}, set()),
        ({"workflow": "triage", "status": "ok"}, {usage["a1"]}),
    ]
    for params, expected in cases:
        assert ids_of(client.get(USAGE, params)) == expected, params


def test_invalid_filters_are_400_with_field_messages(a, usage):
    client = client_for(a.admin, a.org)
    response = client.get(USAGE, {"since": "yesterday", "status": "maybe", "key": "abc"})
    assert response.status_code == 400
    assert set(response.json()) == {"since", "status", "key"}
    # A window that ends before it starts holds no records (a rule across two parameters
    # cannot be published in the schema, so the API answers it instead of refusing it).
    backwards = client.get(USAGE, {"since": "2025-03-11T00:00:00Z", "until": "2025-03-10T00:00:00Z"})
    assert backwards.status_code == 200 and backwards.json()["results"] == []
    empty = client.get(USAGE, {"until": "", "key": ""})
    assert empty.status_code == 400 and set(empty.json()) == {"until", "key"}


def test_a_record_is_read_by_its_request_id_with_decimal_strings(a, usage):
    response = client_for(a.admin, a.org).get(f"{USAGE}{usage['a1']}/")
    assert response.status_code == 200
    data = response.json()
    assert data["cost"] == "0.1000000001" and data["tags"] == ["alpha", "beta"] and data["ok"] is True
    assert client_for(a.admin, a.org).get(f"{USAGE}no-such-request/").status_code == 404


def test_cursor_pagination_walks_every_record_once_newest_first(a, transactional_db):
    # Ties on created_at must not lose or repeat records across pages.
    events = {}
    for n in range(7):
        at = T0 + timedelta(minutes=n // 2)
        events[f"page-{n}"] = usage_event(a, at=at, cost="0.01")
    usage_write(**events)
    client = client_for(a.admin, a.org)
    seen, url, params = [], USAGE, {"page_size": 2}
    while url:
        response = client.get(url, params)
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"next", "previous", "results"}
        assert len(body["results"]) <= 2
        seen += [(row["created_at"], row["request_id"]) for row in body["results"]]
        url, params = body["next"], None
    assert sorted(r for _, r in seen) == sorted(events)
    assert len(seen) == len(set(seen)) == 7
    expected = list(
        UsageRecord.objects.filter(organization_id=a.org.id).order_by("-created_at", "-id").values_list("request_id")
    )
    assert [r for _, r in seen] == [r for (r,) in expected]


def test_summary_by_model_sums_exact_decimals_in_sql(a, usage, django_assert_max_num_queries):
    client = client_for(a.finance, a.org)
    with django_assert_max_num_queries(6):
        response = client.get(f"{USAGE}summary/", {"group_by": "model"})
    assert response.status_code == 200, response.content
    data = response.json()
    rows = {row["group"]: row for row in data["results"]}
    assert rows["gpt-test"]["cost"] == "1.8000000003"  # 0.1000000001 + 0.2000000002 + 1.5 + 0
    assert rows["gpt-test"]["requests"] == 4 and rows["gpt-test"]["errors"] == 1
    assert rows["gpt-test"]["input_tokens"] == 1300 and rows["gpt-test"]["output_tokens"] == 560
    assert rows["embed-test"]["cost"] == "0.0000000007"
    assert data["totals"]["cost"] == "1.8000000010" and data["totals"]["requests"] == 5
    assert Decimal(data["totals"]["cost"]) == sum(Decimal(r["cost"]) for r in data["results"])


def test_summary_by_key_and_team_labels_the_groups(a, usage):
    client = client_for(a.admin, a.org)
    by_key = {row["group"]: row for row in client.get(f"{USAGE}summary/", {"group_by": "key"}).json()["results"]}
    assert by_key[str(a.member_key.id)]["label"].startswith("member app a (")
    assert by_key[str(a.admin_key.id)]["cost"] == "0.0000000007"
    by_team = client.get(f"{USAGE}summary/", {"group_by": "team"}).json()["results"]
    assert {(row["group"], row["label"], row["requests"]) for row in by_team} == {
        (str(a.team.id), a.team.name, 4),
        (None, "(no team)", 1),
    }


def test_summary_by_day_counts_days_in_the_organizations_time_zone(a, usage):
    client = client_for(a.admin, a.org)
    utc_days = client.get(f"{USAGE}summary/", {"group_by": "day"}).json()["results"]
    assert [(r["group"], r["requests"]) for r in utc_days] == [
        ("2025-03-10", 2),
        ("2025-03-11", 2),
        ("2025-03-12", 1),
    ]
    # 12:00 UTC on 10 March is already 11 March in Auckland (UTC+13).
    services.organization_update(organization=a.org, time_zone="Pacific/Auckland")
    local = client.get(f"{USAGE}summary/", {"group_by": "day"}).json()["results"]
    assert [r["group"] for r in local] == ["2025-03-11", "2025-03-12", "2025-03-13"]


def test_summary_takes_the_usage_filters_and_rejects_unknown_groupings(a, usage):
    client = client_for(a.admin, a.org)
    filtered = client.get(f"{USAGE}summary/", {"group_by": "model", "since": "2025-03-11T00:00:00Z"}).json()
    assert filtered["totals"]["requests"] == 3 and filtered["totals"]["cost"] == "1.5000000007"
    assert client.get(f"{USAGE}summary/", {"group_by": "weather"}).status_code == 400


def test_summary_of_no_usage_is_zero(a):
    data = client_for(a.admin, a.org).get(f"{USAGE}summary/").json()
    assert data == {
        "group_by": "day",
        "results": [],
        "totals": {
            "requests": 0,
            "errors": 0,
            "input_tokens": 0,
            "output_tokens": 0,
            "cached_tokens": 0,
            "cost": "0.0000000000",
        },
    }


def test_members_cannot_read_usage(a, usage):
    client = client_for(a.member, a.org)
    assert client.get(USAGE).status_code == 403
    assert client.get(f"{USAGE}{usage['a1']}/").status_code == 403


# --- the filter definition and selectors, as the console uses them ---------------------------------


def test_the_filterset_reads_a_query_string_like_the_console_sends(a, usage):
    filterset = UsageFilterSet(
        QueryDict("status=ok&workflow=triage&page=3"), queryset=usage_list(organization_id=a.org.id)
    )
    assert filterset.is_valid()
    assert list(filterset.qs.values_list("request_id", flat=True)) == [usage["a1"]]
    invalid = UsageFilterSet(QueryDict("team=x"))
    assert not invalid.is_valid() and list(invalid.errors) == ["team"]
    assert set(UsageFilterSet().form.fields) == {
        "since",
        "until",
        "model",
        "key",
        "team",
        "user",
        "status",
        "endpoint",
        "workflow",
        "tag",
    }


def test_usage_list_filters_through_the_selector(a, b, usage):
    filters = UsageFilterSet({"status": "error"}).filters
    assert list(usage_list(organization_id=a.org.id, filters=filters).values_list("request_id", flat=True)) == [
        usage["a4"]
    ]
    assert list(usage_list(organization_id=b.org.id).values_list("request_id", flat=True)) == [usage["b1"]]


def test_usage_summary_selector_returns_decimals(a, usage):
    rows = usage_summary(organization_id=a.org.id, group_by="model", since=T0, until=T0 + timedelta(days=1))
    assert rows == [
        {
            "group": "gpt-test",
            "label": "gpt-test",
            "requests": 2,
            "errors": 0,
            "input_tokens": 200,
            "output_tokens": 40,
            "cached_tokens": 0,
            "cost": Decimal("0.3000000003"),
        }
    ]
    assert isinstance(rows[0]["cost"], Decimal)


def test_usage_daily_is_zero_filled_for_the_chart(a, transactional_db):
    now = timezone.now()
    usage_write(
        today=usage_event(a, at=now, cost="0.25"),
        today2=usage_event(a, at=now, cost="0.50"),
        two_days_ago=usage_event(a, at=now - timedelta(days=2), cost="1"),
        too_old=usage_event(a, at=now - timedelta(days=30), cost="100"),
    )
    series = usage_daily(organization_id=a.org.id, days=4)
    assert [row["day"] for row in series] == [(now - timedelta(days=n)).date() for n in (3, 2, 1, 0)]
    assert [(row["requests"], row["cost"]) for row in series] == [
        (0, Decimal(0)),
        (1, Decimal("1")),
        (0, Decimal(0)),
        (2, Decimal("0.75")),
    ]


def test_usage_list_runs_a_fixed_number_of_queries(a, usage, django_assert_max_num_queries):
    client = client_for(a.admin, a.org)
    with django_assert_max_num_queries(6):
        response = client.get(USAGE, {"status": "ok", "page_size": 3})
    assert len(response.json()["results"]) == 3
