"""What other apps may use of `providers`: wire adapters, the registry snapshot and
token estimates.

The data plane reads the registry only through the immutable snapshot built
here (`catalog_build`) and reaches an upstream only through an adapter from
`get_adapter`; it never touches provider models. Everything returned is frozen.
"""

from __future__ import annotations

from providers.adapters import get_adapter
from providers.adapters.base import (
    ChatResult,
    ChatStream,
    EmbeddingResult,
    Target,
    UpstreamError,
    Usage,
)
from providers.headers import forwardable_headers
from providers.snapshot import CatalogSnapshot, DeploymentInfo, ModelInfo, Price, catalog_build
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
    "ModelInfo",
    "Price",
    "Target",
    "UpstreamError",
    "Usage",
    "catalog_build",
    "count_tokens",
    "estimate_prompt_tokens",
    "estimate_text_tokens",
    "forwardable_headers",
    "get_adapter",
]


def model_names(*, include_retired: bool = False) -> list[str]:
    """Names of the models in the registry, sorted (retired ones left out unless asked)."""
    from providers.models import Lifecycle, ModelCard

    cards = ModelCard.objects.all() if include_retired else ModelCard.objects.exclude(lifecycle=Lifecycle.RETIRED)
    return list(cards.order_by("name").values_list("name", flat=True))


def model_count() -> int:
    from providers.models import ModelCard

    return ModelCard.objects.count()


def models_known(names: list[str] | set[str]) -> set[str]:
    """Which of `names` are models in the registry."""
    from providers.models import ModelCard

    return set(ModelCard.objects.filter(name__in=list(names)).values_list("name", flat=True))
