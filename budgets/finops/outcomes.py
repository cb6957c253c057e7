"""Outcomes: what a request or a workflow achieved, and what each outcome cost (CPSI).

CPSI (cost per successful interaction, here per outcome) of a workflow over a window =
the spend of the workflow's requests in the window ÷ the outcomes recorded for it in
the window. An outcome posted against a request id takes that request's workflow.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, QuerySet, Sum
from django.utils import timezone

from budgets.models import Outcome, UsageRecord


class OutcomeError(ValueError):
    """The outcome cannot be recorded (the message says why)."""


def outcome_record(
    *,
    organization_id: int,
    name: str,
    request_id: str = "",
    workflow: str = "",
    value: Decimal | None = None,
    key_id: int | None = None,
    key_ids: tuple[int, ...] | None = None,
) -> Outcome:
    """Record one outcome. `key_ids`: when given, the request must have come through one of them."""
    name = name.strip()
    if not name:
        raise OutcomeError("An outcome needs a name.")
    if not request_id and not workflow:
        raise OutcomeError("Give a request_id or a workflow.")
    if request_id:
        record = (
            UsageRecord.objects.filter(organization_id=organization_id, request_id=request_id)
            .values("workflow", "key_id")
            .first()
        )
        if record is None or (key_ids is not None and record["key_id"] not in key_ids):
            raise OutcomeError(
                f"No request {request_id!r} in this organization (usage records are written within about "
                "a second of the response: retry shortly if the request has only just finished)."
            )
        if workflow and record["workflow"] and workflow != record["workflow"]:
            raise OutcomeError(f"Request {request_id!r} belongs to workflow {record['workflow']!r}, not {workflow!r}.")
        workflow = workflow or record["workflow"]
    return Outcome.objects.create(
        organization_id=organization_id,
        request_id=request_id,
        workflow=workflow,
        name=name[:200],
        value=value,
        key_id=key_id,
        created_at=timezone.now(),
    )


@dataclass(frozen=True)
class OutcomeCounts:
    workflow: str
    name: str
    count: int
    value: Decimal


def outcome_counts(*, organization_id: int, start, end, key_ids: tuple[int, ...] | None = None) -> list[OutcomeCounts]:
    queryset: QuerySet[Outcome] = Outcome.objects.filter(
        organization_id=organization_id, created_at__gte=start, created_at__lt=end
    )
    if key_ids is not None:
        queryset = queryset.filter(key_id__in=key_ids)
    rows = queryset.values("workflow", "name").annotate(count=Count("id"), value=Sum("value")).order_by()
    return [
        OutcomeCounts(
            workflow=row["workflow"],
            name=row["name"],
            count=row["count"],
            value=Decimal(row["value"] or 0).quantize(Decimal("0.0001")),
        )
        for row in rows
    ]


def outcome_daily_counts(
    *, organization_id: int, start, end, zone, key_ids: tuple[int, ...] | None = None
) -> dict[tuple[str, object], int]:
    """(workflow, local day) -> outcomes recorded, in one query."""
    from django.db.models.functions import TruncDate

    queryset = Outcome.objects.filter(organization_id=organization_id, created_at__gte=start, created_at__lt=end)
    if key_ids is not None:
        queryset = queryset.filter(key_id__in=key_ids)
    rows = (
        queryset.annotate(day=TruncDate("created_at", tzinfo=zone))
        .values("workflow", "day")
        .annotate(count=Count("id"))
        .order_by()
    )
    return {(row["workflow"], row["day"]): row["count"] for row in rows}
