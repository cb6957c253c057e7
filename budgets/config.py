"""Budgets and rate limits in the YAML configuration (`export_config` / `apply_config`).

    budgets:
    - name: Research monthly
      organization: acme
      scope: team            # organization | team | user | key
      target: Research       # team name, username or key prefix; none for the organization
      amount: "500.00"
      period: monthly        # daily | weekly | monthly | lifetime
      hard: true
      thresholds: [50, 80, 100]
    rate_limits:
    - name: gpt-4o deployment
      scope: deployment      # organization | team | user | key | deployment
      target: gpt-4o@azure   # a deployment's name
      rpm: 500
      tpm: 200000
    budget_policies:
    - organization: acme
      on_store_failure: open   # closed (default): refuse with a 503 | open: serve without a hold

An entry is identified by its organization and name (a policy by its organization). Pruning archives budgets (their
history stays) and deletes rate limits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib.auth import get_user_model

from budgets import services
from budgets.models import Budget, BudgetPolicy, LimitScope, Period, RateLimit, Scope, StoreFailure
from console.models import ApiKey, Organization, Team
from gatehouse.config import CREATE, PRUNE, UNCHANGED, UPDATE, Change, PlanContext

Parser = Callable[[Any], Any]


def _choice(values: list[str]) -> Parser:
    def parse(value: Any) -> str:
        if value not in values:
            raise ValueError(f"{value!r} is not one of {', '.join(values)}")
        return value

    return parse


def _amount(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError('write amounts as quoted decimals, e.g. "500.00"')
    try:
        amount = Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"{value!r} is not an amount") from exc
    if amount < 0 or amount != amount.quantize(Decimal(1).scaleb(-10)):
        raise ValueError("an amount of 0 or more with at most 10 decimal places")
    return amount


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{value!r} is not true or false")
    return value


def _thresholds(value: Any) -> list[int]:
    if not isinstance(value, list) or not all(
        isinstance(t, int) and not isinstance(t, bool) and 0 < t <= 1000 for t in value
    ):
        raise ValueError("a list of whole percentages between 1 and 1000")
    return sorted(set(value))


def _per_minute(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{value!r} is not a whole number of 1 or more")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 200:
        raise ValueError(f"{value!r} is not a name")
    return value


def _entries(
    section: str,
    entries: Any,
    spec: dict[str, tuple[Any, Parser]],
    problems: list[str],
    *,
    organization_required: bool = True,
) -> list[tuple[str, dict[str, Any]]]:
    """Validate entries; identity is (organization, name), so two organizations may reuse a name."""
    if not isinstance(entries, list):
        problems.append(f"{section}: expected a list of entries")
        return []
    parsed, seen = [], set()
    known = set(spec) | {"name", "organization"}
    for index, entry in enumerate(entries):
        path = f"{section}[{index}]"
        if not isinstance(entry, Mapping):
            problems.append(f"{path}: expected a mapping of fields")
            continue
        found = [f"{path}.{key}: unknown field" for key in sorted(set(entry) - known, key=str)]
        name, slug = entry.get("name"), entry.get("organization")
        if not isinstance(name, str) or not name.strip():
            found.append(f"{path}.name: an entry needs a name")
        if slug is None and organization_required:
            found.append(f"{path}.organization: required")
        elif slug is not None and not isinstance(slug, str):
            found.append(f"{path}.organization: {slug!r} is not an organization slug")
        values: dict[str, Any] = {}
        for key, (default, parse) in spec.items():
            if key not in entry:
                if default is ...:
                    found.append(f"{path}.{key}: required")
                values[key] = None if default is ... else default
                continue
            try:
                values[key] = parse(entry[key])
            except ValueError as exc:
                found.append(f"{path}.{key}: {exc}")
        if not found:
            ident = (slug, name.strip())
            if ident in seen:
                found.append(f"{path}.name: {name.strip()!r} appears twice for this organization")
            seen.add(ident)
        problems.extend(found)
        if not found:
            parsed.append((path, {**values, "name": name.strip(), "organization": slug}))
    return parsed


def target_resolve(*, organization: Organization | None, scope: str, target: Any) -> int:
    """A target named in a file (team name, username, key prefix, deployment name) to its id."""
    if scope == Scope.ORGANIZATION:
        if organization is None:
            raise ValueError("an organization scope needs an organization")
        return organization.id
    if not isinstance(target, str) or not target:
        raise ValueError(f"a {scope} scope needs a target")
    if scope == Scope.TEAM:
        found = Team.objects.filter(organization=organization, name=target).values_list("id", flat=True).first()
    elif scope == Scope.USER:
        found = (
            get_user_model()
            .objects.filter(username=target, memberships__organization=organization)
            .values_list("id", flat=True)
            .first()
        )
    elif scope == Scope.KEY:
        found = ApiKey.objects.filter(organization=organization, prefix=target).values_list("id", flat=True).first()
    else:
        from providers.models import Deployment

        # Deployment names are unique among those one organization sees (shared and its own).
        seen = Deployment.objects.filter(organization__isnull=True) | Deployment.objects.filter(
            organization=organization
        )
        found = seen.filter(name=target).values_list("id", flat=True).first()
    if found is None:
        raise ValueError(f"unknown {scope} {target!r}")
    return found


def target_name(scope: str, scope_id: int, names: dict[tuple[str, int], str]) -> str | None:
    return None if scope == Scope.ORGANIZATION else names.get((scope, scope_id), str(scope_id))


def _names() -> dict[tuple[str, int], str]:
    from providers.models import Deployment

    names: dict[tuple[str, int], str] = {}
    names.update({(Scope.TEAM.value, pk): n for pk, n in Team.objects.values_list("id", "name")})
    names.update({(Scope.USER.value, pk): n for pk, n in get_user_model().objects.values_list("id", "username")})
    names.update({(Scope.KEY.value, pk): n for pk, n in ApiKey.objects.values_list("id", "prefix")})
    names.update({(LimitScope.DEPLOYMENT.value, pk): n for pk, n in Deployment.objects.values_list("id", "name")})
    return names


def _bind(function: Callable[..., Any], **kwargs: Any) -> Callable[[], Any]:
    return lambda: function(**kwargs)


BUDGET_SPEC: dict[str, tuple[Any, Parser]] = {
    "scope": (..., _choice(Scope.values)),
    "target": (None, lambda v: v),
    "amount": (..., _amount),
    "period": (Period.MONTHLY.value, _choice(Period.values)),
    "hard": (True, _flag),
    "thresholds": ([50, 80, 100], _thresholds),
}


class BudgetSection:
    name = "budgets"
    order = 60

    def existing_names(self) -> set[str]:
        return {
            f"{slug}/{name}"
            for slug, name in Budget.objects.filter(archived_at__isnull=True).values_list("organization__slug", "name")
        }

    def export(self) -> list[dict[str, Any]]:
        names = _names()
        rows = []
        budgets = Budget.objects.filter(archived_at__isnull=True).select_related("organization")
        for budget in budgets.order_by("organization__slug", "name"):
            row: dict[str, Any] = {"name": budget.name, "organization": budget.organization.slug, "scope": budget.scope}
            target = target_name(budget.scope, budget.scope_id, names)
            if target is not None:
                row["target"] = target
            row.update(
                {
                    "amount": f"{budget.amount.normalize():f}",
                    "period": budget.period,
                    "hard": budget.hard,
                    "thresholds": list(budget.thresholds),
                }
            )
            rows.append(row)
        return rows

    def plan(self, entries: list[Any], *, context: PlanContext, problems: list[str]) -> list[Change]:
        parsed = _entries(self.name, entries, BUDGET_SPEC, problems)
        orgs = {o.slug: o for o in Organization.objects.filter(slug__in={v["organization"] for _, v in parsed})}
        existing = {
            (b.organization.slug, b.name): b
            for b in Budget.objects.filter(archived_at__isnull=True).select_related("organization")
        }
        changes: list[Change] = []
        declared = set()
        for path, values in parsed:
            organization = orgs.get(values["organization"])
            if organization is None:
                problems.append(f"{path}.organization: unknown organization {values['organization']!r}")
                continue
            try:
                scope_id = target_resolve(organization=organization, scope=values["scope"], target=values["target"])
            except ValueError as exc:
                problems.append(f"{path}.target: {exc}")
                continue
            ident = (organization.slug, values["name"])
            declared.add(ident)
            label = f"{ident[0]}/{ident[1]}"
            fields = {
                "amount": values["amount"],
                "period": values["period"],
                "hard": values["hard"],
                "thresholds": values["thresholds"],
            }
            budget = existing.get(ident)
            if budget is None:
                run = _bind(
                    services.budget_create,
                    organization=organization,
                    scope=values["scope"],
                    scope_id=scope_id,
                    name=values["name"],
                    **fields,
                )
                changes.append(Change(self.name, label, CREATE, run=run))
                continue
            if (budget.scope, budget.scope_id) != (values["scope"], scope_id):
                problems.append(f"{path}.scope: a budget cannot move to another target (archive it, add another)")
                continue
            changed = {key: value for key, value in fields.items() if getattr(budget, key) != value}
            if changed:
                run = _bind(services.budget_update, budget=budget, **changed)
                changes.append(Change(self.name, label, UPDATE, tuple(sorted(changed)), run=run))
            else:
                changes.append(Change(self.name, label, UNCHANGED))
        if context.prune:
            for ident, budget in sorted(existing.items()):
                if ident not in declared:
                    changes.append(
                        Change(
                            self.name,
                            f"{ident[0]}/{ident[1]}",
                            PRUNE,
                            ("archive",),
                            run=_bind(services.budget_archive, budget=budget),
                        )
                    )
        return changes


LIMIT_SPEC: dict[str, tuple[Any, Parser]] = {
    "scope": (..., _choice(LimitScope.values)),
    "target": (None, lambda v: v),
    "rpm": (None, _per_minute),
    "tpm": (None, _per_minute),
}


class RateLimitSection:
    name = "rate_limits"
    order = 70

    def existing_names(self) -> set[str]:
        return {f"{slug or ''}/{name}" for slug, name in RateLimit.objects.values_list("organization__slug", "name")}

    def export(self) -> list[dict[str, Any]]:
        names = _names()
        rows = []
        for limit in RateLimit.objects.select_related("organization").order_by("organization__slug", "name"):
            row: dict[str, Any] = {"name": limit.name}
            if limit.organization is not None:
                row["organization"] = limit.organization.slug
            row["scope"] = limit.scope
            target = target_name(limit.scope, limit.scope_id, names)
            if target is not None:
                row["target"] = target
            if limit.rpm:
                row["rpm"] = limit.rpm
            if limit.tpm:
                row["tpm"] = limit.tpm
            rows.append(row)
        return rows

    def plan(self, entries: list[Any], *, context: PlanContext, problems: list[str]) -> list[Change]:
        parsed = _entries(self.name, entries, LIMIT_SPEC, problems, organization_required=False)
        orgs = {o.slug: o for o in Organization.objects.filter(slug__in={v["organization"] for _, v in parsed})}
        existing = {
            (r.organization.slug if r.organization else None, r.name): r
            for r in RateLimit.objects.select_related("organization")
        }
        changes: list[Change] = []
        declared = set()
        for path, values in parsed:
            slug = values["organization"]
            organization = orgs.get(slug) if slug else None
            if slug and organization is None:
                problems.append(f"{path}.organization: unknown organization {slug!r}")
                continue
            if organization is None and values["scope"] != LimitScope.DEPLOYMENT:
                problems.append(f"{path}.organization: required for a {values['scope']} limit")
                continue
            if values["rpm"] is None and values["tpm"] is None:
                problems.append(f"{path}: set rpm, tpm or both")
                continue
            try:
                scope_id = target_resolve(organization=organization, scope=values["scope"], target=values["target"])
            except ValueError as exc:
                problems.append(f"{path}.target: {exc}")
                continue
            ident = (slug, values["name"])
            declared.add(ident)
            label = f"{slug or '-'}/{values['name']}"
            current = existing.get(ident)
            if current is not None and (current.scope, current.scope_id, current.rpm, current.tpm) == (
                values["scope"],
                scope_id,
                values["rpm"],
                values["tpm"],
            ):
                changes.append(Change(self.name, label, UNCHANGED))
                continue
            run = _bind(
                _limit_apply,
                previous=current,
                organization=organization,
                scope=values["scope"],
                scope_id=scope_id,
                rpm=values["rpm"],
                tpm=values["tpm"],
                name=values["name"],
            )
            changes.append(Change(self.name, label, CREATE if current is None else UPDATE, run=run))
        if context.prune:
            for ident, limit in sorted(existing.items(), key=lambda item: (item[0][0] or "", item[0][1])):
                if ident not in declared:
                    changes.append(
                        Change(
                            self.name,
                            f"{ident[0] or '-'}/{ident[1]}",
                            PRUNE,
                            ("delete",),
                            run=_bind(services.rate_limit_delete, limit=limit),
                        )
                    )
        return changes


def _limit_apply(*, previous: RateLimit | None, **fields: Any) -> None:
    if previous is not None and (previous.scope, previous.scope_id) != (fields["scope"], fields["scope_id"]):
        services.rate_limit_delete(limit=previous)
    services.rate_limit_set(**fields)


class BudgetPolicySection:
    """What each organization's requests get when the budget store is unavailable."""

    name = "budget_policies"
    order = 75

    def existing_names(self) -> set[str]:
        return set(BudgetPolicy.objects.values_list("organization__slug", flat=True))

    def export(self) -> list[dict[str, Any]]:
        rows = BudgetPolicy.objects.select_related("organization").order_by("organization__slug")
        return [{"organization": p.organization.slug, "on_store_failure": p.on_store_failure} for p in rows]

    def plan(self, entries: list[Any], *, context: PlanContext, problems: list[str]) -> list[Change]:
        if not isinstance(entries, list):
            problems.append(f"{self.name}: expected a list of entries")
            return []
        parsed: list[tuple[str, str, str]] = []
        seen: set[str] = set()
        for index, entry in enumerate(entries):
            path = f"{self.name}[{index}]"
            if not isinstance(entry, Mapping):
                problems.append(f"{path}: expected a mapping of fields")
                continue
            found = [
                f"{path}.{key}: unknown field"
                for key in sorted(set(entry) - {"organization", "on_store_failure"}, key=str)
            ]
            slug, mode = entry.get("organization"), entry.get("on_store_failure", StoreFailure.CLOSED.value)
            if not isinstance(slug, str) or not slug:
                found.append(f"{path}.organization: required")
            elif slug in seen:
                found.append(f"{path}.organization: {slug!r} appears twice")
            if mode not in StoreFailure.values:
                found.append(f"{path}.on_store_failure: {mode!r} is not one of {', '.join(StoreFailure.values)}")
            problems.extend(found)
            if not found:
                seen.add(slug)
                parsed.append((path, slug, mode))
        orgs = {o.slug: o for o in Organization.objects.filter(slug__in=[slug for _, slug, _ in parsed])}
        existing = {p.organization.slug: p for p in BudgetPolicy.objects.select_related("organization")}
        changes: list[Change] = []
        for path, slug, mode in parsed:
            organization = orgs.get(slug)
            if organization is None:
                problems.append(f"{path}.organization: unknown organization {slug!r}")
                continue
            current = existing.get(slug)
            if current is not None and current.on_store_failure == mode:
                changes.append(Change(self.name, slug, UNCHANGED))
                continue
            run = _bind(services.budget_policy_set, organization=organization, on_store_failure=mode)
            changes.append(Change(self.name, slug, CREATE if current is None else UPDATE, (mode,), run=run))
        if context.prune:
            for slug, policy in sorted(existing.items()):
                if slug not in seen and policy.on_store_failure != StoreFailure.CLOSED:
                    run = _bind(services.budget_policy_set, organization=policy.organization, on_store_failure="closed")
                    changes.append(Change(self.name, slug, PRUNE, ("closed",), run=run))
        return changes


def config_sections() -> list:
    return [BudgetSection(), RateLimitSection(), BudgetPolicySection()]
