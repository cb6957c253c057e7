"""Reads of usage records and budgets for the management API and the console.

Sums are computed by the database, never by iterating records. Money stays
Decimal: on SQLite, which stores decimals as floating point, costs are summed as
integers of 1e-10 USD so the totals are exact there too.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import connection
from django.db.models import BigIntegerField, Count, DecimalField, F, Q, QuerySet, Sum, Value
from django.db.models.functions import Cast, Coalesce, NullIf, Round, TruncDate
from django.utils import timezone

from budgets.clock import SYSTEM_CLOCK as clock
from budgets.filters import UsageFilters
from budgets.models import (
    MONEY,
    Budget,
    BudgetAlert,
    BudgetCounter,
    RateLimit,
    UsageDeadLetter,
    UsageRecord,
    units_to_usd,
)
from budgets.periods import period_bounds, zone_of
from console.models import ApiKey, Organization, Team

GroupBy = Literal["day", "model", "key", "team"]
GROUP_BY_CHOICES: tuple[str, ...] = ("day", "model", "key", "team")

ORDERING = ("-created_at", "-id")
_COST_DECIMAL_PLACES = MONEY["decimal_places"]
_COST_SCALE = Decimal(10) ** _COST_DECIMAL_PLACES
_COST_QUANTUM = Decimal(1).scaleb(-_COST_DECIMAL_PLACES)
ZERO = Decimal(0)


def usage_list(*, organization_id: int, filters: UsageFilters | None = None) -> QuerySet[UsageRecord]:
    """The organization's usage records, newest first (the order cursor pagination needs)."""
    queryset = UsageRecord.objects.filter(organization_id=organization_id)
    if filters is not None:
        queryset = filters.apply(queryset)
    return queryset.order_by(*ORDERING)


def usage_get(*, organization_id: int, request_id: str) -> UsageRecord | None:
    return UsageRecord.objects.filter(organization_id=organization_id, request_id=request_id).first()


def organization_zone(organization_id: int) -> ZoneInfo:
    """The zone an organization's days are counted in (UTC when unknown)."""
    name = Organization.objects.filter(id=organization_id).values_list("time_zone", flat=True).first() or "UTC"
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _cost_sum() -> Any:
    if connection.vendor == "sqlite":
        scaled = Cast(Round(F("cost") * Value(_COST_SCALE)), BigIntegerField())
        return Coalesce(Sum(scaled), Value(0), output_field=BigIntegerField())
    output = DecimalField(max_digits=30, decimal_places=_COST_DECIMAL_PLACES)
    return Coalesce(Sum("cost", output_field=output), Value(ZERO), output_field=output)


def _cost_value(raw: Any) -> Decimal:
    if raw is None:
        return ZERO
    value = Decimal(int(raw)) / _COST_SCALE if connection.vendor == "sqlite" else Decimal(raw)
    return value.quantize(_COST_QUANTUM)


def _sums() -> dict[str, Any]:
    return {
        "requests": Count("id"),
        "errors": Count("id", filter=Q(status_code__gte=400)),
        "input_tokens": Coalesce(Sum("input_tokens"), 0),
        "output_tokens": Coalesce(Sum("output_tokens"), 0),
        "cached_tokens": Coalesce(Sum("cached_tokens"), 0),
        "cost_raw": _cost_sum(),
    }


def usage_summary(
    *,
    organization_id: int,
    group_by: GroupBy,
    since: datetime | None = None,
    until: datetime | None = None,
    filters: UsageFilters | None = None,
) -> list[dict[str, Any]]:
    """Sums per day (in the organization's time zone), model, key or team.

    Each row: group (str or None), label, requests, errors, input_tokens,
    output_tokens, cached_tokens, cost (Decimal). Days come in calendar order,
    the other groupings by cost, highest first.
    """
    if group_by not in GROUP_BY_CHOICES:
        raise ValueError(f"Unknown grouping {group_by!r}.")
    queryset = usage_list(organization_id=organization_id, filters=filters).order_by()
    if since is not None:
        queryset = queryset.filter(created_at__gte=since)
    if until is not None:
        queryset = queryset.filter(created_at__lt=until)
    if group_by == "day":
        dimension: Any = TruncDate("created_at", tzinfo=organization_zone(organization_id))
    elif group_by == "model":
        dimension = Coalesce(NullIf("model_used", Value("")), "model_requested")
    else:
        dimension = F(f"{group_by}_id")
    rows = list(queryset.annotate(group=dimension).values("group").annotate(**_sums()).order_by("group"))
    for row in rows:
        row["cost"] = _cost_value(row.pop("cost_raw"))
    labels = _labels(group_by, organization_id, [row["group"] for row in rows])
    result = []
    for row in rows:
        group = row["group"]
        if isinstance(group, date):
            group = group.isoformat()
        elif group is not None:
            group = str(group)
        result.append({**row, "group": group, "label": labels.get(row["group"], group or "")})
    if group_by != "day":
        result.sort(key=lambda r: (-r["cost"], -r["requests"], r["label"]))
    return result


def _labels(group_by: str, organization_id: int, values: list[Any]) -> dict[Any, str]:
    """Human names for key and team ids, in one query (records keep ids, not links)."""
    ids = [v for v in values if v is not None]
    if group_by == "key":
        keys = ApiKey.objects.filter(organization_id=organization_id, id__in=ids).values_list("id", "name", "prefix")
        labels = {pk: f"{name} ({prefix}…)" for pk, name, prefix in keys}
        return {**labels, None: "(no key)"}
    if group_by == "team":
        teams = Team.objects.filter(organization_id=organization_id, id__in=ids).values_list("id", "name")
        return {**dict(teams), None: "(no team)"}
    return {}


def usage_totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The sum of summary rows (exact: Decimal and int addition)."""
    totals: dict[str, Any] = {
        "requests": 0,
        "errors": 0,
        "input_tokens": 0,
        "output_tokens": 0,
        "cached_tokens": 0,
        "cost": ZERO,
    }
    for row in rows:
        for name in totals:
            totals[name] += row[name]
    return totals


def usage_daily(*, organization_id: int, days: int = 30) -> list[dict[str, Any]]:
    """Requests and cost for each of the last `days` days (today included), zero-filled."""
    days = max(1, int(days))
    zone = organization_zone(organization_id)
    today = timezone.now().astimezone(zone).date()
    first = today - timedelta(days=days - 1)
    since = datetime.combine(first, datetime.min.time(), tzinfo=zone)
    rows = (
        UsageRecord.objects.filter(organization_id=organization_id, created_at__gte=since)
        .annotate(day=TruncDate("created_at", tzinfo=zone))
        .values("day")
        .annotate(requests=Count("id"), cost_raw=_cost_sum())
        .order_by("day")
    )
    by_day = {row["day"]: row for row in rows}
    series = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        row = by_day.get(day)
        series.append(
            {
                "day": day,
                "requests": row["requests"] if row else 0,
                "cost": _cost_value(row["cost_raw"]) if row else ZERO,
            }
        )
    return series


# --------------------------------------------------------------------------- budgets


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """One budget in one period: what is spent, held and left, and when it resets."""

    budget: Budget
    period_start: datetime
    period_end: datetime | None
    spent: Decimal
    held: Decimal

    @property
    def limit(self) -> Decimal:
        return self.budget.amount

    @property
    def remaining(self) -> Decimal:
        return max(ZERO, self.limit - self.spent - self.held)

    @property
    def spent_percent(self) -> float:
        """For drawing bars only; the money itself stays Decimal."""
        return float(self.spent / self.limit * 100) if self.limit else (100.0 if self.spent else 0.0)

    @property
    def held_percent(self) -> float:
        return float(self.held / self.limit * 100) if self.limit else 0.0

    @property
    def over(self) -> bool:
        return self.spent > self.limit


def budget_list(*, organization_id: int, include_archived: bool = False) -> QuerySet[Budget]:
    budgets = Budget.objects.filter(organization_id=organization_id).select_related("organization")
    if not include_archived:
        budgets = budgets.filter(archived_at__isnull=True)
    return budgets.order_by("scope", "scope_id", "period", "id")


def budget_statuses(*, budgets: list[Budget], at: datetime | None = None) -> dict[int, BudgetStatus]:
    """The current period of each budget, read in one query."""
    at = at or clock.now()
    bounds = {b.id: period_bounds(b.period, at, zone_of(b.organization.time_zone)) for b in budgets}
    query = Q(pk__in=[])
    for budget_id, (start, _) in bounds.items():
        query |= Q(budget_id=budget_id, period_start=start)
    rows = {
        (row["budget_id"], row["period_start"]): row
        for row in BudgetCounter.objects.filter(query).values("budget_id", "period_start", "spent_units", "held_units")
    }
    statuses = {}
    for budget in budgets:
        start, end = bounds[budget.id]
        row = rows.get((budget.id, start)) or {"spent_units": 0, "held_units": 0}
        statuses[budget.id] = BudgetStatus(
            budget=budget,
            period_start=start,
            period_end=end,
            spent=units_to_usd(row["spent_units"]),
            held=units_to_usd(row["held_units"]),
        )
    return statuses


def budget_periods(*, budget: Budget, at: datetime | None = None, limit: int = 36) -> list[BudgetStatus]:
    """The budget's periods, newest first, the current one always included."""
    current = budget_statuses(budgets=[budget], at=at)[budget.id]
    history = [current]
    for row in budget.counters.exclude(period_start=current.period_start).order_by("-period_start")[:limit]:
        history.append(
            BudgetStatus(
                budget=budget,
                period_start=row.period_start,
                period_end=row.period_end,
                spent=units_to_usd(row.spent_units),
                held=units_to_usd(row.held_units),
            )
        )
    return sorted(history, key=lambda status: status.period_start, reverse=True)


@dataclass
class BudgetNode:
    """A node of the budget tree: the organization, a team, a user or a key."""

    kind: str  # organization | team | user | key | group
    id: int | None
    label: str
    statuses: list[BudgetStatus] = field(default_factory=list)
    limit: RateLimit | None = None
    children: list[BudgetNode] = field(default_factory=list)
    detail: str = ""

    @property
    def scope_value(self) -> str:
        return f"{self.kind}:{self.id}"


def budget_tree(*, organization: Organization, at: datetime | None = None) -> BudgetNode:
    """organization -> teams -> members -> their keys in the team, in a fixed number of queries.

    Members in no team and keys with neither team nor user hang under the organization.
    """
    from django.contrib.auth import get_user_model

    budgets = list(budget_list(organization_id=organization.id))
    statuses = budget_statuses(budgets=budgets, at=at)
    by_scope: dict[tuple[str, int], list[BudgetStatus]] = defaultdict(list)
    for budget in budgets:
        by_scope[(budget.scope, budget.scope_id)].append(statuses[budget.id])
    limits = {(limit.scope, limit.scope_id): limit for limit in RateLimit.objects.filter(organization=organization)}

    def node(kind: str, pk: int, label: str, detail: str = "") -> BudgetNode:
        return BudgetNode(
            kind=kind,
            id=pk,
            label=label,
            statuses=by_scope.get((kind, pk), []),
            limit=limits.get((kind, pk)),
            detail=detail,
        )

    root = node("organization", organization.id, organization.name)
    users = {
        user.id: user
        for user in get_user_model().objects.filter(memberships__organization=organization).order_by("username")
    }
    keys = list(
        ApiKey.objects.filter(organization=organization)
        .order_by("name", "id")
        .values_list("id", "name", "prefix", "team_id", "user_id", "revoked_at")
    )
    in_a_team: set[int] = set()
    teams = Team.objects.filter(organization=organization).prefetch_related("members").order_by("name")
    for team in teams:
        team_node = node("team", team.id, team.name)
        members = sorted((u for u in team.members.all() if u.id in users), key=lambda u: u.get_username())
        for user in members:
            in_a_team.add(user.id)
            user_node = node("user", user.id, user.get_username(), user.email)
            user_node.children = [
                node("key", pk, name, f"{prefix}… revoked" if revoked else f"{prefix}…")
                for pk, name, prefix, team_id, user_id, revoked in keys
                if team_id == team.id and user_id == user.id
            ]
            team_node.children.append(user_node)
        unowned = [
            node("key", pk, name, f"{prefix}… (no user)")
            for pk, name, prefix, team_id, user_id, revoked in keys
            if team_id == team.id and (user_id is None or user_id not in {m.id for m in members})
        ]
        team_node.children.extend(unowned)
        root.children.append(team_node)
    for user in users.values():
        if user.id in in_a_team:
            continue
        user_node = node("user", user.id, user.get_username(), user.email)
        user_node.children = [
            node("key", pk, name, f"{prefix}…")
            for pk, name, prefix, team_id, user_id, revoked in keys
            if team_id is None and user_id == user.id
        ]
        root.children.append(user_node)
    loose = [
        node("key", pk, name, f"{prefix}…")
        for pk, name, prefix, team_id, user_id, _ in keys
        if team_id is None and user_id is None
    ]
    if loose:
        root.children.append(BudgetNode(kind="group", id=None, label="Keys without team or user", children=loose))
    return root


def alerts_active(*, organization_id: int, at: datetime | None = None) -> list[BudgetAlert]:
    """Undismissed alerts of periods that have not ended, highest threshold per budget first."""
    at = at or clock.now()
    alerts = (
        BudgetAlert.objects.filter(
            organization_id=organization_id, dismissed_at__isnull=True, budget__archived_at__isnull=True
        )
        .filter(Q(period_end__isnull=True) | Q(period_end__gt=at))
        .select_related("budget")
        .order_by("budget_id", "-threshold")
    )
    seen: set[int] = set()
    result = []
    for alert in alerts:
        if alert.budget_id not in seen:
            seen.add(alert.budget_id)
            result.append(alert)
    return result


def dead_letters_list(*, organization_id: int) -> QuerySet[UsageDeadLetter]:
    """The organization's usage records the database refused, newest first."""
    return UsageDeadLetter.objects.filter(organization_id=organization_id).order_by("-created_at", "-id")


def dead_letters_count(*, organization_id: int) -> int:
    return UsageDeadLetter.objects.filter(organization_id=organization_id).count()


def budget_policy_of(*, organization_id: int) -> str:
    """`closed` or `open`: what the organization's requests get when the budget store is unavailable."""
    from budgets.models import BudgetPolicy, StoreFailure

    found = BudgetPolicy.objects.filter(organization_id=organization_id).values_list("on_store_failure", flat=True)
    return next(iter(found), StoreFailure.CLOSED.value)
