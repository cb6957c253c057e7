"""Reads of the registry for the console and the management API."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from django.db.models import Count, Q, QuerySet

from console.models import Organization
from providers.catalog import CatalogError, catalog_load
from providers.models import Deployment, ModelCard, OrganizationModel, Provider


def model_list_for(*, organization: Organization | None) -> QuerySet[ModelCard]:
    """The catalog and the organization's private models (never another organization's)."""
    mine = Q(organization__isnull=True)
    if organization is not None:
        mine |= Q(organization=organization)
    return ModelCard.objects.filter(mine)


def model_settings_for(*, organization: Organization, cards) -> dict[int, OrganizationModel]:
    """The organization's settings of the given catalog models, by card id (one query)."""
    ids = [card.id for card in cards]
    rows = OrganizationModel.objects.filter(organization=organization, model_id__in=ids)
    return {row.model_id: row for row in rows}


def model_list(
    *,
    organization: Organization | None = None,
    tier: str | None = None,
    vendor: str | None = None,
    search: str | None = None,
    lifecycle: str | None = None,
) -> QuerySet[ModelCard]:
    """Model cards, filtered; `search` matches name, display name, vendor and description.

    Deployments are counted among those the organization can use.
    """
    visible = Q(deployments__organization__isnull=True)
    if organization is not None:
        visible |= Q(deployments__organization=organization)
    cards = model_list_for(organization=organization).annotate(deployment_count=Count("deployments", filter=visible))
    if tier:
        cards = cards.filter(tier=tier)
    if vendor:
        cards = cards.filter(vendor__iexact=vendor.strip())
    if lifecycle:
        cards = cards.filter(lifecycle=lifecycle)
    if search:
        term = search.strip()
        cards = cards.filter(
            Q(name__icontains=term)
            | Q(display_name__icontains=term)
            | Q(vendor__icontains=term)
            | Q(description__icontains=term)
        )
    return cards.order_by("vendor", "name")


@dataclass(frozen=True)
class VendorSummary:
    vendor: str
    display_name: str
    models: int


@lru_cache(maxsize=1)
def _vendor_names() -> dict[str, str]:
    try:
        return {key: info.display_name for key, info in catalog_load().vendors.items()}
    except CatalogError:
        return {}


def vendor_list() -> list[VendorSummary]:
    """Every vendor in the registry with its model count, in one aggregate query."""
    names = _vendor_names()
    rows = (
        ModelCard.objects.filter(organization__isnull=True)
        .values("vendor")
        .annotate(models=Count("id"))
        .order_by("vendor")
    )
    # One entry per vendor whatever its spelling (cards written before vendors were normalized).
    counts: dict[str, int] = {}
    for row in rows:
        key = " ".join(row["vendor"].split()).lower()
        counts[key] = counts.get(key, 0) + row["models"]
    return [
        VendorSummary(vendor=vendor, display_name=names.get(vendor, vendor), models=models)
        for vendor, models in sorted(counts.items())
    ]


def provider_list_for(*, organization: Organization) -> QuerySet[Provider]:
    """Providers an organization can use: the shared ones and its own."""
    return (
        Provider.objects.filter(Q(organization__isnull=True) | Q(organization=organization))
        .select_related("organization")
        .annotate(deployment_count=Count("deployments"))
        .order_by("name")
    )


def deployment_list_for(*, organization: Organization) -> QuerySet[Deployment]:
    """Deployments on the providers an organization can use, with model and provider joined."""
    return (
        Deployment.objects.filter(Q(provider__organization__isnull=True) | Q(provider__organization=organization))
        .select_related("model", "provider", "provider__organization")
        .order_by("model__name", "name")
    )


def deployments_filter(
    deployments: QuerySet[Deployment], *, search: str = "", provider: str = "", vendor: str = "", status: str = ""
) -> QuerySet[Deployment]:
    """Narrow a deployment list for the console: text, provider, the model's vendor, active or not."""
    if search:
        deployments = deployments.filter(
            Q(name__icontains=search) | Q(model__name__icontains=search) | Q(upstream_model__icontains=search)
        )
    if provider:
        deployments = deployments.filter(provider__name=provider)
    if vendor:
        deployments = deployments.filter(model__vendor__iexact=vendor)
    if status == "active":
        deployments = deployments.filter(is_active=True, provider__is_active=True)
    elif status == "disabled":
        deployments = deployments.filter(Q(is_active=False) | Q(provider__is_active=False))
    return deployments
