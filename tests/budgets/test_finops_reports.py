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

from budgets.finops.anomalies import AnomalySettings, anomalies_detect
from budgets.finops.reports import digest_text
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
    by_scope = {(a.dimension, a.value): a for a in found}
    # The spike shows in the organization and in each scope it came from (one key, team, model).
    assert set(by_scope) == {
        ("organization", ""),
        ("team", str(world.team.id)),
        ("key", str(world.key.id)),
        ("model", "gpt-4o"),
    }
    assert {a.spend for a in found} == {Decimal("1.8000000000")}  # 400 x (1000 x 2.5 + 200 x 10) / 1M
    # One alert for the hour through the organization's channels, naming every scope.
    assert len(mail.outbox) == 1 and "Spend anomaly" in mail.outbox[0].subject
    body = mail.outbox[0].body
    assert "whole organization" in body and "team Research" in body and "model gpt-4o" in body
    assert anomalies_detect(now=NOW, config=config) == []
    assert SpendAnomaly.objects.count() == 4 and len(mail.outbox) == 1
    digest = digest_text(organization=world.org, now=NOW)
    assert "Hours with spend anomalies this week: 1" in digest and "team Research: $1.8" in digest


def test_a_key_spiking_inside_steady_organization_spend_is_an_anomaly_of_that_key(world):
    """The organization's total stays within its baseline; the other key's spend does not."""
    for hours in range(1, 7 * 24 + 1):
        for _ in range(3):  # steady: 3 gpt-4o requests an hour on the member's key
            usage_buffer.add(
                usage_event(org_id=world.org.id, key=world.key, at=NOW - timedelta(hours=hours), model="gpt-4o")
            )
    for _ in range(2):  # 2 gpt-4o requests within the usual hour, on a key that never spent before
        usage_buffer.add(
            usage_event(org_id=world.org.id, key=world.other_key, at=NOW - timedelta(minutes=30), model="gpt-4o")
        )
    for _ in range(3):
        usage_buffer.add(
            usage_event(org_id=world.org.id, key=world.key, at=NOW - timedelta(minutes=20), model="gpt-4o")
        )
    usage_buffer.flush()
    usage_rollup_rebuild()
    found = anomalies_detect(now=NOW, config=AnomalySettings(factor=3.0, min_usd=Decimal("0.005")))
    assert [(a.dimension, a.value) for a in found] == [("key", str(world.other_key.id))]
    assert found[0].spend == Decimal("0.0090000000") and found[0].baseline == 0
    assert len(mail.outbox) == 1 and "key other app" in mail.outbox[0].subject


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


def test_chargeback_api_gives_the_statement_and_one_teams_statement(world, client):
    from console import services as console_services

    seed_small(world, now=NOW, days=25)
    finance = console_services.user_create(username="fin-cb", email="fin@cb.test")
    console_services.membership_set(organization=world.org, user=finance, role="finance", actor=world.owner)
    client.force_login(finance)
    overview = client.get("/finops/").content.decode()
    assert "/api/v1/chargeback?period=" in overview
    response = client.get("/api/v1/chargeback", {"period": "2026-03"})
    assert response.status_code == 200 and response["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    march = UsageRecord.objects.filter(
        created_at__gte=datetime(2026, 3, 1, tzinfo=UTC), created_at__lt=datetime(2026, 4, 1, tzinfo=UTC)
    )
    total = next(row for row in rows if row["Team"] == "TOTAL")
    assert Decimal(total["Cost (USD)"]) == sum(march.values_list("cost", flat=True))
    team = client.get("/api/v1/chargeback", {"period": "2026-03", "team": world.team.id})
    team_rows = list(csv.DictReader(io.StringIO(team.content.decode())))
    team_march = march.filter(team_id=world.team.id)
    assert Decimal(team_rows[-1]["Cost (USD)"]) == sum(team_march.values_list("cost", flat=True))
    assert client.get("/api/v1/chargeback", {"period": "March"}).status_code == 400
    assert client.get("/api/v1/chargeback", {"period": "2026-03", "team": "999999"}).status_code == 404
    assert client.get("/api/v1/chargeback", {"period": "2026-03", "team": "x"}).status_code == 400
    client.force_login(world.member)
    assert client.get("/api/v1/chargeback", {"period": "2026-03"}).status_code == 403
    assert "/api/v1/chargeback" not in client.get("/finops/").content.decode()
