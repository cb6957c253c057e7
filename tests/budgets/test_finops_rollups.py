"""Rollups carry every dashboard dimension and equal the raw records in every column."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from budgets.finops.queries import percentile_from_counts
from budgets.models import LATENCY_COLUMNS, TTFT_COLUMNS, UsageHourly
from budgets.rollup_facts import histogram_bucket
from budgets.rollups import rollup_check, rollup_totals, usage_rollup, usage_rollup_rebuild
from budgets.usage import UsageEvent, UsageSink

usage_buffer = UsageSink()  # the records these tests write, without a journal

pytestmark = pytest.mark.django_db(transaction=True)
NOW = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


def record(i: int, **extra) -> None:
    fields = {
        "request_id": f"req_{uuid.uuid4().hex}",
        "created_at": NOW - timedelta(minutes=13 * i),
        "organization_id": 1 + i % 2,
        "team_id": 10 + i % 3,
        "user_id": 20 + i % 4,
        "key_id": 30 + i % 5,
        "endpoint": "chat",
        "status_code": [200, 200, 200, 429, 502][i % 5],
        "model_requested": "auto",
        "model_used": ["gpt-4o", "gpt-4o-mini", "llama-3-70b"][i % 3],
        "provider_name": ["openai", "groq"][i % 2],
        "deployment_id": 40 + i % 3,
        "deployment_name": f"dep-{i % 3}",
        "attempts": 1 + (i % 7 == 0),
        "input_tokens": 100 + i,
        "output_tokens": 20 + i,
        "cached_tokens": i % 4 * 10,
        "input_cost": Decimal(f"0.00000{i:02d}13"),
        "output_cost": Decimal(f"0.0000{i:02d}071"),
        "cost": Decimal(f"0.00000{i:02d}13") + Decimal(f"0.0000{i:02d}071"),
        "latency_ms": 40.0 * (1 + i % 9),
        "ttft_ms": None if i % 6 == 0 else 5.0 * (1 + i % 5),
        "tags": [["a", "b"], ["b"], []][i % 3],
        "workflow": ["triage", "summarize"][i % 2],
        "metadata": {
            "route": "support",
            "cascade_layer": i % 3,
            "data_class": ["internal", "confidential"][i % 2],
            "reasoning_tokens": i % 5,
            "tier": "frontier" if i % 3 == 0 else "",
        },
    }
    fields.update(extra)
    usage_buffer.add(UsageEvent(**fields))


def test_every_column_of_the_rollups_equals_the_raw_records():
    for i in range(60):
        record(i)
    usage_buffer.flush()
    usage_rollup(now=NOW)

    assert rollup_check() == []
    totals = rollup_totals()
    assert totals["rollup_requests"] == 60
    assert totals["rollup_errors"] == 24
    assert totals["rollup_reasoning_tokens"] == sum(i % 5 for i in range(60))
    assert totals["rollup_fallbacks"] == len([i for i in range(60) if i % 7 == 0])
    assert sum(totals[f"rollup_{c}"] for c in LATENCY_COLUMNS) == 60
    assert sum(totals[f"rollup_{c}"] for c in TTFT_COLUMNS) == totals["rollup_ttft_count"] == 50
    dims = set(UsageHourly.objects.values_list("route", "data_class", "status_class", "tagset").distinct())
    assert ("support", "confidential", "5xx", ",b,") in dims
    assert {row[2] for row in dims} == {"2xx", "4xx", "5xx"}
    assert set(UsageHourly.objects.values_list("cascade_layer", flat=True)) == {0, 1, 2}
    assert "frontier" in set(UsageHourly.objects.values_list("tier", flat=True))


def test_the_check_reports_a_rollup_that_drifted():
    for i in range(10):
        record(i)
    usage_buffer.flush()
    usage_rollup(now=NOW)
    row = UsageHourly.objects.first()
    row.output_tokens += 1
    row.save()
    assert [line.split(":")[0] for line in rollup_check()] == ["output_tokens"]


def test_rebuild_command_recomputes_history_and_checks_it(capsys):
    for i in range(30):
        record(i, created_at=NOW - timedelta(days=i))
    usage_buffer.flush()
    call_command("rollup_usage", "--rebuild", "--check")
    out = capsys.readouterr().out
    assert "equal the raw records" in out
    assert UsageHourly.objects.count() >= 30
    with pytest.raises(CommandError):
        call_command("rollup_usage", "--since", "2026-01-01")
    with pytest.raises(CommandError):
        call_command("rollup_usage", "--rebuild", "--since", "not a date")


def test_rebuild_of_a_range_leaves_other_hours_alone():
    for i in range(5):
        record(i, created_at=NOW - timedelta(days=i))
    usage_buffer.flush()
    usage_rollup_rebuild()
    before = UsageHourly.objects.count()
    usage_rollup_rebuild(since=NOW - timedelta(days=1, hours=1), until=NOW)
    assert UsageHourly.objects.count() == before
    assert rollup_check() == []


def test_histogram_buckets_and_percentiles():
    assert histogram_bucket(0.5) == 0
    assert histogram_bucket(1.0) == 0
    assert histogram_bucket(1.2) == 1
    assert histogram_bucket(10**7) == len(LATENCY_COLUMNS) - 1
    counts = [0] * len(LATENCY_COLUMNS)
    for value in [50.0] * 90 + [900.0] * 9 + [20_000.0]:
        counts[histogram_bucket(value)] += 1
    p50 = percentile_from_counts(counts, 0.50)
    p95 = percentile_from_counts(counts, 0.95)
    p99 = percentile_from_counts(counts, 0.99)
    assert 39.8 <= p50 <= 63.1
    assert 630 <= p95 <= 1000
    assert 630 <= p99 <= 1000
    assert percentile_from_counts([0] * len(LATENCY_COLUMNS), 0.5) is None


def test_a_rollup_gives_sqlites_planner_statistics_of_the_rollup_indexes():
    """Without statistics SQLite answered a member's "own keys" Overview through the team
    index, reading the whole organization (`make bench-finops`: 680 ms at 1M records)."""
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL keeps its own statistics (autovacuum)")
    for i in range(10):
        record(i)
    usage_buffer.flush()
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS sqlite_stat1")
    usage_rollup(now=NOW)
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM sqlite_stat1 WHERE tbl = %s", [UsageHourly._meta.db_table])
        assert cursor.fetchone()[0] >= 1
