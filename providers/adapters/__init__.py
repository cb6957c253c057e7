"""Provider adapters: one per wire format, all speaking OpenAI's on the gateway side.

`get_adapter(kind)` returns the shared, stateless adapter for a provider kind.
"""

from __future__ import annotations

from .anthropic import AnthropicAdapter
from .azure_openai import AzureOpenAIAdapter
from .base import Adapter, ChatResult, ChatStream, EmbeddingResult, Target, UpstreamError, Usage
from .gemini import GeminiAdapter
from .openai import OpenAIAdapter

__all__ = [
    "PROVIDER_KINDS",
    "Adapter",
    "ChatResult",
    "ChatStream",
    "EmbeddingResult",
    "Target",
    "UpstreamError",
    "Usage",
    "get_adapter",
]

_ADAPTERS: dict[str, Adapter] = {
    "openai": OpenAIAdapter(),
    "azure_openai": AzureOpenAIAdapter(),
    "anthropic": AnthropicAdapter(),
    "gemini": GeminiAdapter(),
}
PROVIDER_KINDS = tuple(_ADAPTERS)


def get_adapter(kind: str) -> Adapter:
    """The adapter for a provider kind; ValueError for a kind nobody implements."""
    try:
        return _ADAPTERS[kind]
    except KeyError:
        raise ValueError(f"unknown provider kind {kind!r}; expected one of {', '.join(PROVIDER_KINDS)}") from None
