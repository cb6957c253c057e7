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
