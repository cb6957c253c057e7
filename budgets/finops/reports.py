"""Spend anomalies, the weekly digest and the monthly chargeback statement.

Anomaly: an hour whose spend is above both `ANOMALY_FACTOR` x the trailing mean hourly
spend of the 7 days before it and that mean + 3 standard deviations, and at least
`ANOMALY_MIN_USD`. It is recorded once and sent through the budget alert channels
(the organization's alert webhook, signed the same way, and e-mail to the same people).
"""

from __future__ import annotations

import json
import logging
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from budgets.finops import queries as q
from budgets.finops.tables import write_csv
from budgets.models import SpendAnomaly, UsageHourly

logger = logging.getLogger(__name__)
EVENT = "spend.anomaly"


@dataclass(frozen=True)
class AnomalySettings:
    factor: float = 3.0
    min_usd: Decimal = Decimal("1")

    @classmethod
    def load(cls) -> AnomalySettings:
        raw = getattr(settings, "GATEHOUSE_FINOPS", {})
        return cls(factor=float(raw.get("ANOMALY_FACTOR", 3.0)), min_usd=Decimal(str(raw.get("ANOMALY_MIN_USD", 1.0))))


def _hourly_spend(organization_id: int, start: datetime, end: datetime) -> dict[datetime, Decimal]:
    rows = (
        UsageHourly.objects.filter(organization_id=organization_id, hour__gte=start, hour__lt=end)
        .values("hour")
        .annotate(cost_raw=q.money_sum("cost"))
        .order_by()
    )
    return {row["hour"]: q.money_value(row["cost_raw"]) for row in rows}


def anomalies_detect(*, now: datetime | None = None, config: AnomalySettings | None = None) -> list[SpendAnomaly]:
    """Check the last complete hour of every organization with traffic; record and send anomalies."""
    config = config or AnomalySettings.load()
    now = now or timezone.now()
    hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    found = []
    organizations = UsageHourly.objects.filter(hour=hour).values_list("organization_id", flat=True).distinct()
    for organization_id in organizations:
        spend = _hourly_spend(organization_id, hour - timedelta(days=7), hour + timedelta(hours=1))
        current = spend.pop(hour, q.ZERO)
        trailing = [float(spend.get(hour - timedelta(hours=h), q.ZERO)) for h in range(1, 7 * 24 + 1)]
        mean = statistics.fmean(trailing)
        spread = statistics.pstdev(trailing)
        threshold = max(mean * config.factor, mean + 3 * spread)
        if current < config.min_usd or float(current) <= threshold:
            continue
        try:
            with transaction.atomic():
                anomaly = SpendAnomaly.objects.create(
                    organization_id=organization_id,
                    hour=hour,
                    dimension="organization",
                    value="",
                    spend=current,
                    baseline=Decimal(str(round(mean, 10))),
                )
        except IntegrityError:
            continue  # already recorded by an earlier run
        found.append(anomaly)
        anomaly_send(anomaly)
    return found


def anomaly_send(anomaly: SpendAnomaly) -> None:
    """Webhook (signed like budget alerts) and e-mail through the organization's alert settings."""
    import httpx

    from budgets.alerts import alert_recipients, webhook_signature
    from budgets.models import AlertSettings
    from console.models import Organization

    organization = Organization.objects.get(pk=anomaly.organization_id)
    configured = AlertSettings.objects.filter(organization=organization).first()
    payload = {
        "type": EVENT,
        "id": anomaly.id,
        "organization": organization.slug,
        "hour": anomaly.hour.isoformat(),
        "spend": str(anomaly.spend),
        "baseline": str(anomaly.baseline),
    }
    if configured is not None and configured.webhook_url:
        from gatehouse.crypto import secret_decrypt

        body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        headers = {
            "content-type": "application/json",
            "x-gatehouse-event": EVENT,
            "x-gatehouse-signature": webhook_signature(
                secret_decrypt(configured.webhook_secret_encrypted), int(time.time()), body
            ),
        }
        try:
            httpx.post(configured.webhook_url, content=body, headers=headers, timeout=10).raise_for_status()
        except httpx.HTTPError as error:
            logger.warning("spend anomaly %s webhook failed: %s", anomaly.id, error)
    recipients = alert_recipients(organization, configured)
    if recipients:
        try:
            send_mail(
                f"[Gatehouse] Spend anomaly in {organization.name}: ${anomaly.spend} in one hour",
                f"Between {anomaly.hour:%Y-%m-%d %H}:00 and the next hour (UTC) {organization.name} spent "
                f"${anomaly.spend}, against a trailing mean of ${anomaly.baseline} an hour over the previous 7 days.\n",
                settings.DEFAULT_FROM_EMAIL,
                recipients,
            )
        except OSError as error:
            logger.warning("spend anomaly %s e-mail failed: %s", anomaly.id, error)


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
    anomalies = SpendAnomaly.objects.filter(organization_id=organization.id, hour__gte=recent.start).count()
    lines.append(f"Spend anomalies this week: {anomalies}")
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


def chargeback_rows(*, organization_id: int, start: datetime, end: datetime) -> list[list[Any]]:
    """Per team, model and provider: what each team is charged for the period, plus a total line."""
    rows = (
        UsageHourly.objects.filter(organization_id=organization_id, hour__gte=start, hour__lt=end)
        .values("team_id", "model_used", "provider_name")
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


def chargeback_csv(out: Any, *, organization_id: int, start: datetime, end: datetime) -> None:
    write_csv(out, CHARGEBACK_HEADER, chargeback_rows(organization_id=organization_id, start=start, end=end))
