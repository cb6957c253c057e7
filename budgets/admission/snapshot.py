"""Budget and rate-limit definitions compiled into an immutable in-process snapshot.

Built in a few queries and swapped whole when the change feed announces the
`budgets` topic, so the admission reads only memory.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model

from budgets.admission.types import CompiledBudget, CompiledLimit
from budgets.models import Budget, BudgetPolicy, LimitScope, RateLimit, Scope, StoreFailure
from budgets.periods import zone_of
from console.models import ApiKey, Organization, Team

ScopeKey = tuple  # ("organization", org) | ("team", team) | ("user", org, user) | ("key", key) | ("deployment", dep)


@dataclass(frozen=True, slots=True)
class BudgetSnapshot:
    budgets: dict[ScopeKey, tuple[CompiledBudget, ...]] = field(default_factory=dict)
    limits: dict[ScopeKey, CompiledLimit] = field(default_factory=dict)
    organizations: frozenset[int] = frozenset()  # organizations with any budget or limit
    fail_open: frozenset[int] = frozenset()  # organizations served without a hold when a store fails

    def applicable(
        self, *, organization_id: int, team_id: int | None, user_id: int | None, key_id: int | None
    ) -> tuple[tuple[CompiledBudget, ...], tuple[CompiledLimit, ...]]:
        if organization_id not in self.organizations:
            return (), ()
        scopes: list[ScopeKey] = [("organization", organization_id)]
        if team_id is not None:
            scopes.append(("team", team_id))
        if user_id is not None:
            scopes.append(("user", organization_id, user_id))
        if key_id is not None:
            scopes.append(("key", key_id))
        budgets: list[CompiledBudget] = []
        limits: list[CompiledLimit] = []
        for scope in scopes:
            budgets.extend(self.budgets.get(scope, ()))
            limit = self.limits.get(scope)
            if limit is not None:
                limits.append(limit)
        return tuple(budgets), tuple(limits)

    def deployment_limit(self, deployment_id: int) -> CompiledLimit | None:
        return self.limits.get(("deployment", deployment_id))

    @property
    def has_deployment_limits(self) -> bool:
        return any(scope[0] == "deployment" for scope in self.limits)


def scope_key(scope: str, scope_id: int, organization_id: int | None) -> ScopeKey:
    if scope == Scope.USER:
        return ("user", organization_id, scope_id)
    return (scope, scope_id)


def scope_labels(rows: list[tuple[str, int]]) -> dict[tuple[str, int], str]:
    """Human names for (scope, id) pairs, in one query per kind."""
    wanted: dict[str, set[int]] = defaultdict(set)
    for scope, scope_id in rows:
        wanted[scope].add(scope_id)
    labels: dict[tuple[str, int], str] = {}
    if wanted.get(Scope.ORGANIZATION):
        for pk, name in Organization.objects.filter(id__in=wanted[Scope.ORGANIZATION]).values_list("id", "name"):
            labels[(Scope.ORGANIZATION, pk)] = f"organization '{name}'"
    if wanted.get(Scope.TEAM):
        for pk, name in Team.objects.filter(id__in=wanted[Scope.TEAM]).values_list("id", "name"):
            labels[(Scope.TEAM, pk)] = f"team '{name}'"
    if wanted.get(Scope.USER):
        users = get_user_model().objects.filter(id__in=wanted[Scope.USER])
        for pk, username in users.values_list("id", "username"):
            labels[(Scope.USER, pk)] = f"user '{username}'"
    if wanted.get(Scope.KEY):
        for pk, name, prefix in ApiKey.objects.filter(id__in=wanted[Scope.KEY]).values_list("id", "name", "prefix"):
            labels[(Scope.KEY, pk)] = f"key '{name}' ({prefix}…)"
    if wanted.get(LimitScope.DEPLOYMENT):
        from providers.models import Deployment

        for pk, name in Deployment.objects.filter(id__in=wanted[LimitScope.DEPLOYMENT]).values_list("id", "name"):
            labels[(LimitScope.DEPLOYMENT, pk)] = f"deployment '{name}'"
    return labels


def budget_snapshot_build() -> BudgetSnapshot:
    budgets = list(Budget.objects.filter(archived_at__isnull=True).select_related("organization").order_by("id"))
    limits = list(RateLimit.objects.order_by("id"))
    labels = scope_labels(
        [(b.scope, b.scope_id) for b in budgets] + [(limit.scope, limit.scope_id) for limit in limits]
    )
    compiled: dict[ScopeKey, list[CompiledBudget]] = defaultdict(list)
    organizations: set[int] = set()
    for budget in budgets:
        # The limit itself (100 %) always alerts, whatever else is configured.
        thresholds = tuple(sorted({int(t) for t in budget.thresholds or () if 0 < int(t) <= 1000} | {100}))
        item = CompiledBudget(
            id=budget.id,
            organization_id=budget.organization_id,
            scope=budget.scope,
            scope_id=budget.scope_id,
            label=labels.get((budget.scope, budget.scope_id), f"{budget.scope} {budget.scope_id}"),
            period=budget.period,
            zone=zone_of(budget.organization.time_zone),
            limit_units=budget.amount_units,
            hard=budget.hard,
            thresholds=thresholds,
        )
        compiled[scope_key(budget.scope, budget.scope_id, budget.organization_id)].append(item)
        organizations.add(budget.organization_id)
    compiled_limits: dict[ScopeKey, CompiledLimit] = {}
    for limit in limits:
        if not limit.rpm and not limit.tpm:
            continue
        compiled_limits[scope_key(limit.scope, limit.scope_id, limit.organization_id)] = CompiledLimit(
            scope=limit.scope,
            scope_id=limit.scope_id,
            label=labels.get((limit.scope, limit.scope_id), f"{limit.scope} {limit.scope_id}"),
            rpm=limit.rpm or None,
            tpm=limit.tpm or None,
        )
        if limit.organization_id is not None and limit.scope != LimitScope.DEPLOYMENT:
            organizations.add(limit.organization_id)
    fail_open = BudgetPolicy.objects.filter(on_store_failure=StoreFailure.OPEN).values_list(
        "organization_id", flat=True
    )
    return BudgetSnapshot(
        budgets={scope: tuple(items) for scope, items in compiled.items()},
        limits=compiled_limits,
        organizations=frozenset(organizations),
        fail_open=frozenset(fail_open),
    )


class SnapshotHolder:
    """Holder of the current snapshot; readers take `.current` (never None once refreshed)."""

    def __init__(self) -> None:
        self.current: BudgetSnapshot | None = None

    def refresh(self) -> BudgetSnapshot:
        from django.db import close_old_connections

        close_old_connections()
        self.current = budget_snapshot_build()
        return self.current
