"""What the gateway pipeline may call: the `Budgets` owner and the values it returns.

A composition root creates `Budgets(clock=..., executor=...)`, starts it, and calls
`admit`, `settle`, `renew`, `reserve_more`, `deployment_take`, `deployment_give_back`,
`tick` and `changed` on it (see docs/budgets-runtime.md). Frozen dataclasses out; the
pipeline never touches budget models.

It also carries what the pipeline needs to price and record a request: `cost_of`,
the `UsageEvent` it builds and the `UsageSink` the gateway owns.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from budgets.admission.refusals import (
    DEGRADED,
    FREE,
    OPEN_GATE,
    UNAVAILABLE_CODE,
    BudgetUnavailable,
    DeploymentGate,
)
from budgets.admission.types import Admission, Refusal
from budgets.clock import SYSTEM_CLOCK, Clock, FrozenClock, SettableClock, SystemClock
from budgets.conf import budget_settings
from budgets.finops.telemetry import Telemetry
from budgets.pricing import Cost, cost_of
from budgets.records import UsageEvent
from budgets.runtime import Budgets
from budgets.usage import UsageSink

__all__ = [
    "Telemetry",
    "SpendSummary",
    "spend_summary",
    "Cost",
    "UsageEvent",
    "UsageSink",
    "cost_of",
    "DEGRADED",
    "FREE",
    "OPEN_GATE",
    "UNAVAILABLE_CODE",
    "Admission",
    "BudgetUnavailable",
    "Budgets",
    "Clock",
    "DeploymentGate",
    "FrozenClock",
    "Refusal",
    "SYSTEM_CLOCK",
    "SystemClock",
    "SettableClock",
    "budget_settings",
    "budgets_maintain",
    "VersionSighting",
    "usage_versions_since",
    "organizations_using_models",
]


def budgets_maintain() -> dict[str, int]:
    """Celery beat: release expired holds and write what is pending, with a short-lived owner;
    then retry alert deliveries that failed."""
    from budgets.alerts import alerts_retry

    released = Budgets(clock=SYSTEM_CLOCK).maintain()
    return {"released": released, "alerts_retried": alerts_retry()}


@dataclass(frozen=True, slots=True)
class SpendSummary:
    requests: int
    errors: int
    cost: Decimal


def spend_summary(*, organization_id: int, since: datetime, user_id: int | None = None) -> SpendSummary:
    """Requests and spend since `since` (one user's when `user_id` is given), for pages of other apps."""
    from budgets.filters import UsageFilters
    from budgets.selectors import usage_summary, usage_totals

    totals = usage_totals(
        usage_summary(
            organization_id=organization_id,
            group_by="day",
            since=since,
            filters=UsageFilters(user=user_id) if user_id is not None else None,
        )
    )
    return SpendSummary(requests=totals["requests"], errors=totals["errors"], cost=totals["cost"])


@dataclass(frozen=True, slots=True)
class VersionSighting:
    """Requests of one organization answered by one deployment with one reported version."""

    organization_id: int
    deployment_id: int
    deployment_name: str
    model: str
    version: str
    fingerprint: str
    first_id: int
    last_id: int
    first_at: datetime
    last_at: datetime
    requests: int


SIGHTING_COLUMNS = (
    "organization_id",
    "deployment_id",
    "deployment_name",
    "model_used",
    "upstream_version",
    "system_fingerprint",
)


def usage_versions_since(*, after_id: int, since: datetime | None = None, limit: int = 5000) -> list[VersionSighting]:
    """Reported upstream versions in the usage records after record `after_id` (and not
    older than `since`), grouped, oldest first: one query for drift detection."""
    from django.db.models import Count, Max, Min

    from budgets.models import UsageRecord

    rows = UsageRecord.objects.filter(id__gt=after_id, deployment_id__isnull=False).exclude(upstream_version="")
    if since is not None:
        rows = rows.filter(created_at__gte=since)
    grouped = (
        rows.values(*SIGHTING_COLUMNS)
        .annotate(
            first_id=Min("id"), last_id=Max("id"), first_at=Min("created_at"), last_at=Max("created_at"), n=Count("id")
        )
        .order_by("first_id")[:limit]
    )
    return [
        VersionSighting(
            organization_id=row["organization_id"],
            deployment_id=row["deployment_id"],
            deployment_name=row["deployment_name"],
            model=row["model_used"],
            version=row["upstream_version"],
            fingerprint=row["system_fingerprint"],
            first_id=row["first_id"],
            last_id=row["last_id"],
            first_at=row["first_at"],
            last_at=row["last_at"],
            requests=row["n"],
        )
        for row in grouped
    ]


def organizations_using_models(*, models: list[str], since: datetime) -> dict[str, set[int]]:
    """Per model name, the organizations that sent it requests since `since` (lifecycle alerts)."""
    from budgets.models import UsageRecord

    found: dict[str, set[int]] = {}
    rows = (
        UsageRecord.objects.filter(created_at__gte=since, model_used__in=models)
        .values_list("model_used", "organization_id")
        .distinct()
    )
    for model, organization_id in rows:
        found.setdefault(model, set()).add(organization_id)
    return found
