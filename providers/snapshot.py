"""An immutable in-process picture of the registry for the data plane.

Built from the database in one pass (three queries) and swapped atomically when
the change feed says the registry changed. The hot path only ever reads it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings

from providers.adapters.base import Target
from providers.crypto import SecretUnavailable, provider_secret
from providers.models import DEFAULT_CAPABILITIES, Deployment, Lifecycle, ModelCard

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

    def deployments_for(self, organization_id: int) -> list[DeploymentInfo]:
        return [d for d in self.deployments if d.organization_id is None or d.organization_id == organization_id]


@dataclass(frozen=True, slots=True)
class CatalogSnapshot:
    models: dict[str, ModelInfo] = field(default_factory=dict)

    def model(self, name: str) -> ModelInfo | None:
        return self.models.get(name)


def resolve_base_url(base_url: str) -> str:
    """`sim://openai` points at the built-in simulator wherever it is served."""
    if base_url.startswith("sim://"):
        return settings.GATEHOUSE["SIMULATOR_URL"].rstrip("/") + "/" + base_url[len("sim://") :].strip("/")
    return base_url.rstrip("/")


def catalog_build() -> CatalogSnapshot:
    cards = {
        card.id: card
        for card in ModelCard.objects.exclude(lifecycle=Lifecycle.RETIRED).only(
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
        )
    }
    by_card: dict[int, list[DeploymentInfo]] = {card_id: [] for card_id in cards}
    simulator_on = settings.GATEHOUSE["SIMULATOR"]
    deployments = Deployment.objects.filter(
        is_active=True, provider__is_active=True, model_id__in=cards
    ).select_related("provider")
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
            upstream_model=dep.upstream_model,
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
            )
        )
    models = {}
    for card in cards.values():
        models[card.name] = ModelInfo(
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
        )
    return CatalogSnapshot(models=models)
