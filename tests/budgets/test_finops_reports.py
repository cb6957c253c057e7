"""Spend anomalies against a trailing baseline (recorded once, e-mailed), the weekly digest,
the chargeback statement per team."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.core.management import call_command

from budgets.finops.reports import AnomalySettings, anomalies_detect, digest_text
from budgets.models import SpendAnomaly, UsageRecord
from budgets.rollups import usage_rollup_rebuild
from budgets.usage import UsageSink
from tests.budgets.finops_data import seed_small, usage_event

usage_buffer = UsageSink()  # the records these tests write, without a journal

pytestmark = pytest.mark.django_db(transaction=True)
NOW = datetime(2026, 3, 20, 12, 5, tzinfo=UTC)


def test_a_spike_over_the_trailing_week_is_an_anomaly_recorded_once(world):
    for hours in range(2, 7 * 24, 3):
        usage_buffer.add(
            usage_event(org_id=world.org.id, key=world.key, at=NOW - timedelta(hours=hours), model="gpt-4o")
        )
    for _ in range(400):
        usage_buffer.add(
            usage_event(org_id=world.org.id, key=world.key, at=NOW - timedelta(minutes=30), model="gpt-4o")
        )
    usage_buffer.flush()
    usage_rollup_rebuild()
    config = AnomalySettings(factor=3.0, min_usd=Decimal("0.5"))

    found = anomalies_detect(now=NOW, config=config)
    assert len(found) == 1
    assert found[0].spend == Decimal("1.8000000000")  # 400 x (1000 x 2.5 + 200 x 10) / 1M
    assert mail.outbox and "Spend anomaly" in mail.outbox[0].subject
    assert anomalies_detect(now=NOW, config=config) == []
    assert SpendAnomaly.objects.count() == 1


def test_steady_spend_is_no_anomaly(world):
    for hours in range(1, 7 * 24):
        usage_buffer.add(
            usage_event(org_id=world.org.id, key=world.key, at=NOW - timedelta(hours=hours), model="gpt-4o")
        )
    usage_buffer.flush()
    usage_rollup_rebuild()
    assert anomalies_detect(now=NOW, config=AnomalySettings(min_usd=Decimal("0"))) == []


def test_weekly_digest_names_spend_models_and_teams(world):
    seed_small(world, now=NOW, days=14)
    text = digest_text(organization=world.org, now=NOW)
    assert "gpt-4o" in text and world.team.name in text and "week before" in text


def test_chargeback_statement_per_team_adds_up(world, capsys):
    seed_small(world, now=NOW, days=25)
    call_command("chargeback", "--org", world.org.slug, "--period", "2026-03")
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    total = next(row for row in rows if row["Team"] == "TOTAL")
    march = UsageRecord.objects.filter(
        created_at__gte=datetime(2026, 3, 1, tzinfo=UTC), created_at__lt=datetime(2026, 4, 1, tzinfo=UTC)
    )
    assert Decimal(total["Cost (USD)"]) == sum(march.values_list("cost", flat=True))
    assert {row["Team"] for row in rows if row["Team"] != "TOTAL"} == {world.team.name}


def test_seed_usage_fills_an_existing_organization_once_and_rolls_it_up(world):
    from budgets.rollups import rollup_check

    call_command("seed_usage", "--org", world.org.slug, "--records", "300", "--days", "5", "--if-empty")
    call_command("seed_usage", "--org", world.org.slug, "--records", "300", "--days", "5", "--if-empty")
    assert UsageRecord.objects.filter(organization_id=world.org.id).count() == 300
    assert set(UsageRecord.objects.values_list("key_id", flat=True)) <= {world.key.id, world.other_key.id}
    assert rollup_check() == []
