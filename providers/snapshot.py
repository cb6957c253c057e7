"""An immutable in-process picture of the registry for the data plane.

Built from the database in one pass (three queries) and swapped atomically when
the change feed says the registry changed. The hot path only ever reads it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from providers.adapters.base import Target
from providers.crypto import SecretUnavailable, provider_secret
from providers.facts import UNKNOWN, Facts, facts_resolve, facts_values
from providers.models import DEFAULT_CAPABILITIES, Deployment, Lifecycle, ModelCard
from providers.models_compliance import ComplianceFacts
from providers.snapshot_org import OrgLayer, layers_build, organization_view

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Price:
    """USD per 1M tokens."""

    input: Decimal
    output: Decimal
    cached_input: Decimal


@dataclass(frozen=True, slots=True)
class DeploymentInfo:
    id: int
    name: str
    model_name: str
    provider_name: str
    provider_kind: str
    organization_id: int | None  # None: shared by every organization
    weight: int
    target: Target
    ttft_timeout: float | None = None  # None: the route's or the gateway's default
    stream_idle_timeout: float | None = None
    # Client headers the provider lets through (lower-case); pass them to
    # `providers.headers.forwardable_headers` with the request's headers.
    forward_headers: frozenset[str] = frozenset()
    pinned_version: str = ""  # "" : follows the alias `target.upstream_model`
    health_probe: bool = True  # probed on the health schedule
    # Compliance facts in force (the deployment's own over its provider's over the catalog's).
    facts: Facts = UNKNOWN


@dataclass(frozen=True, slots=True)
class ModelInfo:
    id: int
    name: str
    vendor: str
    tier: str
    context_window: int
    max_output_tokens: int
    capabilities: frozenset[str]
    lifecycle: str
    price: Price
    created: int
    deployments: tuple[DeploymentInfo, ...]
    # The catalog's price when an organization's contracted price applies (`price`); None: the same.
    list_price: Price | None = None
    organization_id: int | None = None  # set on an organization's private model

    @property
    def catalog_price(self) -> Price:
        """The list price: the catalog's, whatever the organization negotiated."""
        return self.list_price or self.price

    def deployments_for(self, organization_id: int) -> list[DeploymentInfo]:
        return [d for d in self.deployments if d.organization_id is None or d.organization_id == organization_id]


@dataclass(frozen=True, slots=True)
class RetiredModel:
    """A model past its retirement: /v1 refuses it and names the replacement."""

    name: str
    replacement: str
    retired_on: date | None


@dataclass(frozen=True, slots=True)
class CatalogSnapshot:
    """The operator's catalog (`models`) and each organization's layer over it.

    The data plane reads an organization's view (`for_organization`): its contracted
    prices, without the models it hides or retired and the models served only for
    other organizations, with its private models. Views are made once per snapshot.
    """

    models: dict[str, ModelInfo] = field(default_factory=dict)
    retired: dict[str, RetiredModel] = field(default_factory=dict)
    layers: dict[int, OrgLayer] = field(default_factory=dict)
    organization_id: int | None = None  # set on an organization's view
    _views: dict[int, CatalogSnapshot] = field(default_factory=dict, compare=False, repr=False)

    def model(self, name: str) -> ModelInfo | None:
        return self.models.get(name)

    def for_organization(self, organization_id: int) -> CatalogSnapshot:
        if self.organization_id is not None:
            return self
        view = self._views.get(organization_id)
        if view is None:
            if len(self._views) > 10_000:
                self._views.clear()
            view = self._views[organization_id] = organization_view(self, organization_id)
        return view


def resolve_base_url(base_url: str) -> str:
    """`sim://openai` points at the built-in simulator wherever it is served."""
    if base_url.startswith("sim://"):
        return settings.GATEHOUSE["SIMULATOR_URL"].rstrip("/") + "/" + base_url[len("sim://") :].strip("/")
    return base_url.rstrip("/")


def _retired(today: date) -> dict[str, RetiredModel]:
    """Cards retired by their lifecycle or by a retirement date that has come."""
    rows = ModelCard.objects.filter(
        Q(lifecycle=Lifecycle.RETIRED) | Q(retirement_date__lte=today), organization__isnull=True
    ).values_list("name", "replacement", "retirement_date")
    return {name: RetiredModel(name, replacement, retired_on) for name, replacement, retired_on in rows}


def catalog_build() -> CatalogSnapshot:
    retired = _retired(timezone.localdate())
    cards = {
        card.id: card
        for card in ModelCard.objects.exclude(lifecycle=Lifecycle.RETIRED)
        .exclude(organization__isnull=True, name__in=list(retired))
        .only(
            "id",
            "name",
            "vendor",
            "tier",
            "context_window",
            "max_output_tokens",
            "capabilities",
            "lifecycle",
            "input_price",
            "output_price",
            "cached_input_price",
            "created_at",
            "organization_id",
            "operator_priced",
        )
    }
    by_card: dict[int, list[DeploymentInfo]] = {card_id: [] for card_id in cards}
    simulator_on = settings.GATEHOUSE["SIMULATOR"]
    deployments = Deployment.objects.filter(
        is_active=True, provider__is_active=True, model_id__in=cards
    ).select_related("provider")
    stated = _stated_facts()
    for dep in deployments:
        provider = dep.provider
        if provider.is_simulator and not simulator_on:
            continue
        try:
            api_key = provider_secret(secret_encrypted=provider.secret_encrypted, secret_env=provider.secret_env)
        except SecretUnavailable:
            logger.error("provider %s: secret cannot be decrypted; its deployments are skipped", provider.name)
            continue
        card = cards[dep.model_id]
        target = Target(
            provider_kind=provider.kind,
            base_url=resolve_base_url(provider.base_url),
            api_key=api_key,
            upstream_model=dep.pinned_version or dep.upstream_model,
            timeout=dep.timeout,
            api_version=provider.api_version,
            extra_headers=tuple((str(k), str(v)) for k, v in (provider.extra_headers or {}).items()),
            default_max_tokens=card.max_output_tokens,
        )
        by_card[dep.model_id].append(
            DeploymentInfo(
                id=dep.id,
                name=dep.name,
                model_name=card.name,
                provider_name=provider.name,
                provider_kind=provider.kind,
                organization_id=provider.organization_id,
                weight=dep.weight,
                target=target,
                ttft_timeout=dep.ttft_timeout,
                stream_idle_timeout=dep.stream_idle_timeout,
                forward_headers=frozenset(provider.forward_headers or ()),
                pinned_version=dep.pinned_version,
                health_probe=dep.health_probe,
                facts=facts_resolve(
                    deployment=stated.get(("deployment", dep.id)),
                    provider=stated.get(("provider", provider.id)),
                    self_hosted=card.operator_priced,
                ),
            )
        )
    models, private = {}, []
    for card in cards.values():
        info = ModelInfo(
            id=card.id,
            name=card.name,
            vendor=card.vendor,
            tier=card.tier,
            context_window=card.context_window,
            max_output_tokens=card.max_output_tokens,
            capabilities=frozenset(card.capabilities or DEFAULT_CAPABILITIES),
            lifecycle=card.lifecycle,
            price=Price(card.input_price, card.output_price, card.cached_input_price),
            created=int(card.created_at.timestamp()),
            deployments=tuple(by_card[card.id]),
            organization_id=card.organization_id,
        )
        if card.organization_id is None:
            models[card.name] = info
        else:
            private.append(info)
    return CatalogSnapshot(models=models, retired=retired, layers=layers_build(models, private))


def _stated_facts() -> dict[tuple[str, int], dict]:
    """Every stated compliance fact, in one query: (kind, id) -> values."""
    out: dict[tuple[str, int], dict] = {}
    for row in ComplianceFacts.objects.all():
        key = ("provider", row.provider_id) if row.provider_id else ("deployment", row.deployment_id)
        out[key] = facts_values(row)
    return out
