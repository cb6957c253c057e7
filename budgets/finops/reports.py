"""The weekly digest and the monthly chargeback statement (spend anomalies: `anomalies.py`)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.utils import timezone

from budgets.finops import queries as q
from budgets.finops.tables import write_csv
from budgets.models import SpendAnomaly, UsageHourly

logger = logging.getLogger(__name__)


def digest_text(*, organization: Any, now: datetime | None = None) -> str:
    """The weekly digest: last 7 days against the 7 before, top models and teams, anomalies."""
    from budgets.selectors import organization_zone

    zone = organization_zone(organization.id)
    today = (now or timezone.now()).astimezone(zone).date()
    scope = q.Scope(organization_id=organization.id)
    recent = q.Window(q.day_start(today - timedelta(days=7), zone), q.day_start(today, zone), zone, "last 7 days")
    prior = q.Window(q.day_start(today - timedelta(days=14), zone), recent.start, zone, "the 7 before")
    this, last = q.Slice(scope, recent).totals(), q.Slice(scope, prior).totals()
    lines = [
        f"Gatehouse weekly spend digest for {organization.name} ({recent.days[0]} to {recent.days[-1]})",
        "",
        f"Spend: ${this['cost']:.4f} over {this['requests']:,} requests (the week before: ${last['cost']:.4f}).",
        "",
        "Top models:",
    ]
    for row in q.Slice(scope, recent).grouped("model")[:5]:
        lines.append(f"  {row['group'] or '(none)'}: ${row['cost']:.4f} ({row['requests']:,} requests)")
    lines.append("Top teams:")
    teams = q.Slice(scope, recent).grouped("team")[:5]
    names = q.labels_for("team", organization.id, [r["group"] for r in teams])
    for row in teams:
        lines.append(f"  {q.label('team', row['group'], names)}: ${row['cost']:.4f}")
    anomalies = list(SpendAnomaly.objects.filter(organization_id=organization.id, hour__gte=recent.start)[:20])
    hours = sorted({a.hour for a in anomalies}, reverse=True)
    lines.append(f"Hours with spend anomalies this week: {len(hours)}")
    if anomalies:
        from budgets.finops.anomalies import anomaly_labels

        labels = anomaly_labels(organization.id, anomalies)
        for anomaly in anomalies[:10]:
            lines.append(f"  {anomaly.hour:%Y-%m-%d %H}:00 UTC, {labels[anomaly.id]}: ${anomaly.spend}")
    return "\n".join(lines) + "\n"


def digests_send(*, now: datetime | None = None) -> int:
    """Send the weekly digest of every organization to its alert recipients."""
    from budgets.alerts import alert_recipients
    from budgets.models import AlertSettings
    from console.models import Organization

    sent = 0
    for organization in Organization.objects.all():
        recipients = alert_recipients(organization, AlertSettings.objects.filter(organization=organization).first())
        if not recipients:
            continue
        send_mail(
            f"[Gatehouse] Weekly spend digest: {organization.name}",
            digest_text(organization=organization, now=now),
            settings.DEFAULT_FROM_EMAIL,
            recipients,
        )
        sent += 1
    return sent


CHARGEBACK_HEADER = ["Team", "Model", "Provider", "Requests", "Input tokens", "Output tokens", "Cost (USD)"]


def chargeback_rows(
    *, organization_id: int, start: datetime, end: datetime, team_id: int | None = None
) -> list[list[Any]]:
    """Per team, model and provider: what each team is charged for the period, plus a total
    line (one team's statement with `team_id`)."""
    found = UsageHourly.objects.filter(organization_id=organization_id, hour__gte=start, hour__lt=end)
    if team_id is not None:
        found = found.filter(team_id=team_id)
    rows = (
        found.values("team_id", "model_used", "provider_name")
        .annotate(**q._sums())
        .order_by("team_id", "model_used", "provider_name")
    )
    names = q.labels_for("team", organization_id, [r["team_id"] for r in rows])
    result, total = [], q.ZERO
    for raw in rows:
        row = q._finish(dict(raw))
        total += row["cost"]
        result.append(
            [
                q.label("team", row["team_id"], names) if row["team_id"] else "(no team)",
                row["model_used"] or "(unknown)",
                row["provider_name"] or "(unknown)",
                row["requests"],
                row["input_tokens"],
                row["output_tokens"],
                row["cost"],
            ]
        )
    result.append(
        ["TOTAL", "", "", sum(r[3] for r in result), sum(r[4] for r in result), sum(r[5] for r in result), total]
    )
    return result


def chargeback_csv(
    out: Any, *, organization_id: int, start: datetime, end: datetime, team_id: int | None = None
) -> None:
    rows = chargeback_rows(organization_id=organization_id, start=start, end=end, team_id=team_id)
    write_csv(out, CHARGEBACK_HEADER, rows)
