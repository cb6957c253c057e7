"""Reads of routing configuration for the console, the API and the services."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

from django.db.models import Avg, Count, Q, QuerySet
from django.utils import timezone

from console.models import Organization
from providers.models import Deployment, Lifecycle, ModelCard
from routing.models import DeploymentPolicy, PolicyState, PolicyVersion
from routing.policy.document import policy_empty


def policy_live(*, organization: Organization) -> PolicyVersion | None:
    return PolicyVersion.objects.filter(organization=organization, state=PolicyState.LIVE).first()


def policy_head(*, organization: Organization) -> PolicyVersion | None:
    """The version new edits build on: the newest pending proposal, else the live one."""
    return (
        PolicyVersion.objects.filter(organization=organization, state__in=(PolicyState.PENDING, PolicyState.LIVE))
        .order_by("-number")
        .first()
    )


def policy_document(version: PolicyVersion | None) -> dict[str, Any]:
    return copy.deepcopy(version.document) if version is not None else policy_empty()


def policy_versions(*, organization: Organization) -> QuerySet[PolicyVersion]:
    return (
        PolicyVersion.objects.filter(organization=organization)
        .select_related("author", "decided_by")
        .order_by("-number")
    )


def policy_pending(*, organization: Organization) -> QuerySet[PolicyVersion]:
    return policy_versions(organization=organization).filter(state=PolicyState.PENDING)


def deployments_visible(*, organization: Organization) -> QuerySet[Deployment]:
    """Deployments an organization's routes may use: its own providers' and shared ones."""
    return Deployment.objects.filter(
        Q(provider__organization__isnull=True) | Q(provider__organization=organization)
    ).select_related("model", "provider")


def model_names(*, organization: Organization | None = None) -> set[str]:
    """The catalog's models and the organization's private ones (not retired)."""
    seen = Q(organization__isnull=True) | Q(organization=organization) if organization else Q(organization__isnull=True)
    return set(ModelCard.objects.filter(seen).exclude(lifecycle=Lifecycle.RETIRED).values_list("name", flat=True))


def deployment_policy_for(*, deployment: Deployment) -> DeploymentPolicy:
    """The stored breaker settings, or unsaved defaults."""
    found = DeploymentPolicy.objects.filter(deployment=deployment).first()
    return found if found is not None else DeploymentPolicy(deployment=deployment)


def deployment_recent_stats(*, deployment_ids: list[int], minutes: int = 15) -> dict[int, dict[str, Any]]:
    """Requests, error rate and mean latency per deployment over the last minutes (from usage records)."""
    from budgets.models import UsageRecord

    since = timezone.now() - timedelta(minutes=minutes)
    rows = (
        UsageRecord.objects.filter(deployment_id__in=deployment_ids, created_at__gte=since)
        .values("deployment_id")
        .annotate(
            requests=Count("id"),
            errors=Count("id", filter=Q(status_code__gte=500) | Q(status_code=429)),
            latency=Avg("latency_ms"),
        )
    )
    stats = {}
    for row in rows:
        requests = row["requests"]
        stats[row["deployment_id"]] = {
            "requests": requests,
            "errors": row["errors"],
            "error_rate": row["errors"] / requests if requests else 0.0,
            "latency_ms": row["latency"],
        }
    return stats


def route_reachable_models(*, organization_id: int, **_: Any) -> dict[str, list[str]]:
    """Per route of the organization's live policy, every model a request on it could be
    answered by: its targets (a deployment counts as its model), the routes it falls back
    to and its cascade layers, followed transitively. Answers `gatehouse.signals.route_models`."""
    version = PolicyVersion.objects.filter(organization_id=organization_id, state=PolicyState.LIVE).first()
    if version is None:
        return {}
    routes = {r["name"]: r for r in version.document.get("routes") or () if isinstance(r, dict) and r.get("name")}
    deployment_models = dict(
        Deployment.objects.filter(
            Q(provider__organization__isnull=True) | Q(provider__organization_id=organization_id)
        ).values_list("name", "model__name")
    )

    def reach(name: str, seen: set[str]) -> set[str]:
        route = routes.get(name)
        if route is None:  # a fallback or layer may name a model instead of a route
            return {name} if name not in seen else set()
        if name in seen:
            return set()
        seen.add(name)
        found: set[str] = set()
        for target in route.get("targets") or ():
            if target.get("model"):
                found.add(target["model"])
            elif target.get("deployment") in deployment_models:
                found.add(deployment_models[target["deployment"]])
        for fallback in route.get("fallbacks") or ():
            found |= reach(fallback.get("route") or "", seen)
        for layer in route.get("layers") or ():
            if layer.get("model"):
                found.add(layer["model"])
            elif layer.get("route"):
                found |= reach(layer["route"], seen)
        return found

    return {name: sorted(m for m in reach(name, set()) if m) for name in routes}
