"""Spend anomalies: spend velocity against a trailing baseline, per organization and per scope.

For the last complete hour, each organization and each of its teams, keys, applications
and models with spend in that hour is checked: the hour is an anomaly when its spend is
above both `ANOMALY_FACTOR` x the scope's mean hourly spend over the 7 days before it and
that mean + 3 standard deviations, and at least `ANOMALY_MIN_USD`.

Deduplicated twice: each (hour, scope) is recorded once (`SpendAnomaly`'s unique
constraint, so a rerun of the job records and sends nothing new), and an organization
gets one alert per hour naming every scope that spiked in it, through the organization's
alert channels (`gatehouse.signals.organization_alert`: its signed webhook and e-mail).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from budgets.finops import queries as q
from budgets.models import SpendAnomaly, UsageHourly

EVENT = "spend.anomaly"
TRAILING_HOURS = 7 * 24
# Scope name on the anomaly -> rollup column. "organization" is the whole organization.
SCOPES = {"team": "team_id", "key": "key_id", "application": "application", "model": "model_used"}


@dataclass(frozen=True)
class AnomalySettings:
    factor: float = 3.0
    min_usd: Decimal = Decimal("1")

    @classmethod
    def load(cls) -> AnomalySettings:
        raw = getattr(settings, "GATEHOUSE_FINOPS", {})
        return cls(factor=float(raw.get("ANOMALY_FACTOR", 3.0)), min_usd=Decimal(str(raw.get("ANOMALY_MIN_USD", 1.0))))


def _spend_by(organization_id: int, column: str | None, start: datetime, end: datetime, values=None) -> dict:
    """{(value, hour): spend} of one organization in [start, end), per value of `column`."""
    rows = UsageHourly.objects.filter(organization_id=organization_id, hour__gte=start, hour__lt=end)
    if column is not None and values is not None:
        rows = rows.filter(**{f"{column}__in": values})
    fields = ("hour",) if column is None else ("hour", column)
    found = {}
    for row in rows.values(*fields).annotate(cost_raw=q.money_sum("cost")).order_by():
        found[(row[column] if column else "", row["hour"])] = q.money_value(row["cost_raw"])
    return found


def _over(current: Decimal, trailing: list[float], config: AnomalySettings) -> float | None:
    """The trailing mean when `current` is an anomaly against it, else None."""
    mean = statistics.fmean(trailing)
    spread = statistics.pstdev(trailing)
    if current < config.min_usd or float(current) <= max(mean * config.factor, mean + 3 * spread):
        return None
    return mean


def _candidates(organization_id: int, hour: datetime, config: AnomalySettings) -> list[tuple[str, Any, Decimal]]:
    """(scope, value, spend this hour) of every scope whose spend this hour reaches the minimum."""
    found = []
    for scope, column in (("organization", None), *SCOPES.items()):
        current = _spend_by(organization_id, column, hour, hour + timedelta(hours=1))
        found.extend(
            (scope, value, spend)
            for (value, _), spend in current.items()
            if spend >= config.min_usd and (column is None or value not in (None, ""))
        )
    return found


def organization_anomalies(organization_id: int, hour: datetime, config: AnomalySettings) -> list[SpendAnomaly]:
    """Record this hour's new anomalies of one organization (each scope once)."""
    candidates = _candidates(organization_id, hour, config)
    by_scope: dict[str, list[tuple[Any, Decimal]]] = defaultdict(list)
    for scope, value, spend in candidates:
        by_scope[scope].append((value, spend))
    found = []
    start = hour - timedelta(hours=TRAILING_HOURS)
    for scope, items in by_scope.items():
        column = SCOPES.get(scope)
        values = [value for value, _ in items] if column else None
        history = _spend_by(organization_id, column, start, hour, values)
        for value, spend in items:
            trailing = [
                float(history.get((value, hour - timedelta(hours=h)), q.ZERO)) for h in range(1, TRAILING_HOURS + 1)
            ]
            mean = _over(spend, trailing, config)
            if mean is None:
                continue
            try:
                with transaction.atomic():
                    anomaly = SpendAnomaly.objects.create(
                        organization_id=organization_id,
                        hour=hour,
                        dimension=scope,
                        value="" if value is None else str(value)[:200],
                        spend=spend,
                        baseline=Decimal(str(round(mean, 10))),
                    )
            except IntegrityError:
                continue  # recorded by an earlier run: not sent again
            found.append(anomaly)
    return found


def anomalies_detect(*, now: datetime | None = None, config: AnomalySettings | None = None) -> list[SpendAnomaly]:
    """Check the last complete hour of every organization with traffic; record new anomalies
    and send one alert per organization naming them."""
    config = config or AnomalySettings.load()
    now = now or timezone.now()
    hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    found = []
    organizations = UsageHourly.objects.filter(hour=hour).values_list("organization_id", flat=True).distinct()
    for organization_id in sorted(set(organizations)):
        new = organization_anomalies(organization_id, hour, config)
        if new:
            anomalies_send(organization_id, new)
            found.extend(new)
    return found


def anomaly_labels(organization_id: int, anomalies: list[SpendAnomaly]) -> dict[int, str]:
    """`{anomaly id: "team Research"}`: where each anomaly happened, with names for ids."""
    names: dict[str, dict] = {}
    for scope in ("team", "key"):
        ids = [int(a.value) for a in anomalies if a.dimension == scope and a.value.isdigit()]
        names[scope] = q.labels_for(scope, organization_id, ids) if ids else {}
    labels = {}
    for anomaly in anomalies:
        if anomaly.dimension == "organization":
            labels[anomaly.id] = "whole organization"
            continue
        value: Any = int(anomaly.value) if anomaly.dimension in names and anomaly.value.isdigit() else anomaly.value
        shown = q.label(anomaly.dimension, value or None, names.get(anomaly.dimension, {}))
        labels[anomaly.id] = f"{anomaly.dimension} {shown}"
    return labels


def anomalies_send(organization_id: int, anomalies: list[SpendAnomaly]) -> None:
    """One alert for an organization's new anomalies of one hour, through its alert channels."""
    from gatehouse.signals import organization_alert

    labels = anomaly_labels(organization_id, anomalies)
    top = max(anomalies, key=lambda a: a.spend)
    lines = [
        f"- {labels[a.id]}: ${a.spend} in the hour, against a trailing mean of ${a.baseline} an hour over 7 days"
        for a in sorted(anomalies, key=lambda a: (a.dimension != "organization", -a.spend))
    ]
    hour = anomalies[0].hour
    organization_alert.send(
        sender=SpendAnomaly,
        organization_id=organization_id,
        event=EVENT,
        subject=f"[Gatehouse] Spend anomaly: ${top.spend} in one hour ({labels[top.id]})",
        text=f"Spend between {hour:%Y-%m-%d %H}:00 and the next hour (UTC) ran well above its trailing "
        f"baseline:\n\n" + "\n".join(lines) + "\n",
        payload={
            "hour": hour.isoformat(),
            "anomalies": [
                {
                    "id": a.id,
                    "scope": a.dimension,
                    "value": a.value,
                    "label": labels[a.id],
                    "spend": str(a.spend),
                    "baseline": str(a.baseline),
                }
                for a in anomalies
            ],
        },
    )
