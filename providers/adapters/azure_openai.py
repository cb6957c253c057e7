"""Azure OpenAI: OpenAI's body format behind per-deployment URLs and `api-key` auth.

Azure streams open with a choice-less `prompt_filter_results` chunk, which the
OpenAI stream already keeps back, so only the URL and headers differ here.
"""

from __future__ import annotations

from urllib.parse import quote

from ._errors import headers_for
from .base import Target
from .openai import OpenAIAdapter

DEFAULT_API_VERSION = "2024-10-21"


def _resource(base_url: str) -> str:
    """The resource endpoint, tolerating a base URL that already ends in /openai."""
    base = base_url.rstrip("/")
    return base[:-7] if base.endswith("/openai") else base


class AzureOpenAIAdapter(OpenAIAdapter):
    """`{endpoint}/openai/deployments/{deployment}/...?api-version=...`."""

    kind = "azure_openai"

    def _url(self, target: Target, operation: str) -> str:
        version = target.api_version or DEFAULT_API_VERSION
        deployment = quote(target.upstream_model, safe="")
        return f"{_resource(target.base_url)}/openai/deployments/{deployment}/{operation}?api-version={version}"

    def chat_url(self, target: Target) -> str:
        return self._url(target, "chat/completions")

    def embeddings_url(self, target: Target) -> str:
        return self._url(target, "embeddings")

    def headers(self, target: Target) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        if target.api_key:  # without one, an Entra ID bearer token comes in extra_headers
            headers["api-key"] = target.api_key
        return headers_for(target, headers)
