"""What other apps may use of `providers`: wire adapters, the registry snapshot and
token estimates.

The data plane reads the registry only through the immutable snapshot built
here (`catalog_build`) and reaches an upstream only through an adapter from
`get_adapter`; it never touches provider models. Everything returned is frozen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from providers.adapters import get_adapter
from providers.adapters.base import (
    ChatResult,
    ChatStream,
    EmbeddingResult,
    Target,
    UpstreamError,
    Usage,
)
from providers.facts import Facts
from providers.headers import forwardable_headers
from providers.snapshot import CatalogSnapshot, DeploymentInfo, ModelInfo, Price, RetiredModel, catalog_build
from providers.tokens import count_tokens, estimate_prompt_tokens, estimate_text_tokens

__all__ = [
    "model_count",
    "model_names",
    "models_known",
    "CatalogSnapshot",
    "ChatResult",
    "ChatStream",
    "DeploymentInfo",
    "EmbeddingResult",
    "Facts",
    "ModelInfo",
    "Price",
    "RetiredModel",
    "LifecycleDate",
    "lifecycle_dates",
    "lifecycle_dates_apply",
    "deployment_pins",
    "Target",
    "UpstreamError",
    "Usage",
    "catalog_build",
    "count_tokens",
    "estimate_prompt_tokens",
    "estimate_text_tokens",
    "forwardable_headers",
    "get_adapter",
    "certification_vocabulary",
]


def _cards_seen(organization_id: int | None):
    """The catalog and, given an organization, its private models (never another's)."""
    from django.db.models import Q

    from providers.models import ModelCard

    seen = Q(organization__isnull=True)
    if organization_id is not None:
        seen |= Q(organization_id=organization_id)
    return ModelCard.objects.filter(seen)


def model_names(*, include_retired: bool = False, organization_id: int | None = None) -> list[str]:
    """Names of the catalog's models and the organization's private ones, sorted
    (retired ones left out unless asked)."""
    from providers.models import Lifecycle

    cards = _cards_seen(organization_id)
    if not include_retired:
        cards = cards.exclude(lifecycle=Lifecycle.RETIRED)
    return sorted(set(cards.values_list("name", flat=True)))


def model_count() -> int:
    from providers.models import ModelCard

    return ModelCard.objects.filter(organization__isnull=True).count()


def models_known(names: list[str] | set[str], *, organization_id: int | None = None) -> set[str]:
    """Which of `names` are models of the catalog or the organization's private ones."""
    return set(_cards_seen(organization_id).filter(name__in=list(names)).values_list("name", flat=True))


@dataclass(frozen=True, slots=True)
class LifecycleDate:
    """A deprecation or retirement date a model card announces."""

    model: str
    kind: str  # "deprecation" | "retirement"
    on_date: date
    replacement: str


def lifecycle_dates(*, until: date) -> list[LifecycleDate]:
    """Announced deprecation and retirement dates on or before `until` (past ones too)."""
    from django.db.models import Q

    from providers.models import ModelCard

    found = []
    cards = ModelCard.objects.filter(Q(deprecation_date__lte=until) | Q(retirement_date__lte=until))
    for name, deprecation, retirement, replacement in cards.values_list(
        "name", "deprecation_date", "retirement_date", "replacement"
    ):
        if deprecation is not None and deprecation <= until:
            found.append(LifecycleDate(name, "deprecation", deprecation, replacement))
        if retirement is not None and retirement <= until:
            found.append(LifecycleDate(name, "retirement", retirement, replacement))
    return found


def lifecycle_dates_apply(*, today: date) -> list[str]:
    """Cards whose date has come take the lifecycle it announced (the gateways rebuild)."""
    from providers.services import lifecycle_dates_apply as apply

    return apply(today=today)


def deployment_pins(*, deployment_ids: list[int]) -> dict[int, str]:
    """The pinned upstream version of these deployments ("" : follows the alias)."""
    from providers.models import Deployment

    return dict(Deployment.objects.filter(id__in=deployment_ids).values_list("id", "pinned_version"))


def certification_vocabulary(*, organization_id: int | None) -> list[tuple[str, str]]:
    """(slug, label) of the certifications and agreements an organization's facts and rules may name."""
    from providers.facts_services import certification_vocabulary as vocabulary

    return vocabulary(organization_id=organization_id)
