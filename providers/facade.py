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
