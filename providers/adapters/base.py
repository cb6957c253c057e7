"""The contract every provider adapter fulfils.

The gateway speaks OpenAI's wire format on both sides of the pipeline; an adapter
translates one request/response/stream/error between that format and one
provider's own. Adapters know wire formats and nothing of policy: they never read
the database, settings or caches. Everything they need arrives in a `Target`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx


@dataclass(frozen=True, slots=True)
class Target:
    """One resolved deployment: where to send a request and how to sign it."""

    provider_kind: str  # "openai" | "azure_openai" | "anthropic" | "gemini"
    base_url: str  # no trailing slash, e.g. "https://api.openai.com/v1"
    api_key: str  # decrypted secret ("" when the upstream needs none)
    upstream_model: str  # model id (OpenAI/Anthropic/Gemini) or deployment name (Azure)
    timeout: float = 60.0  # seconds: a whole call; for a stream, until its response starts (the caller bounds the rest)
    api_version: str = ""  # Azure `api-version`, Anthropic `anthropic-version` override
    extra_headers: tuple[tuple[str, str], ...] = ()
    default_max_tokens: int = 4096  # sent when a provider requires max_tokens


@dataclass(slots=True)
class Usage:
    """Token counts, OpenAI-style: `prompt_tokens` includes cache reads and cache writes."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens read from a prompt cache
    estimated: bool = False  # True when the provider gave no usage and we counted
    cache_write_5m_tokens: int = 0  # prompt tokens written to a 5-minute cache (Anthropic: 1.25x input price)
    cache_write_1h_tokens: int = 0  # prompt tokens written to a 1-hour cache (Anthropic: 2x input price)
    # What the provider says answered: OpenAI / Anthropic `model`, Gemini `modelVersion`;
    # OpenAI's `system_fingerprint`. Empty when the provider did not say.
    upstream_version: str = ""
    system_fingerprint: str = ""
    reasoning_tokens: int = 0  # completion tokens spent thinking (part of completion_tokens), when reported


@dataclass(slots=True)
class ChatResult:
    body: dict[str, Any]  # an OpenAI `chat.completion` object
    usage: Usage


@dataclass(slots=True)
class EmbeddingResult:
    body: dict[str, Any]  # an OpenAI `list` of `embedding` objects
    usage: Usage


class UpstreamError(Exception):
    """A provider call that failed, already mapped to OpenAI's error vocabulary.

    `status` is the HTTP status the gateway should answer with (4xx passed through
    where the provider's complaint is the client's fault, 502/503/504 for upstream
    trouble). `retryable` says whether another attempt or deployment may succeed.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 502,
        type: str = "upstream_error",
        code: str | None = None,
        param: str | None = None,
        retryable: bool = False,
        upstream_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.code = code
        self.param = param
        self.retryable = retryable
        self.upstream_status = upstream_status


class ChatStream(Protocol):
    """An open upstream stream.

    Iterating yields OpenAI `chat.completion.chunk` dicts (without the usage-only
    chunk: usage is collected on `usage`). A failure in the middle of the stream
    raises `UpstreamError` from the iteration. `aclose()` stops the upstream call
    (the client went away) and is safe to call twice.
    """

    usage: Usage | None

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]: ...

    async def aclose(self) -> None: ...


class Adapter(Protocol):
    async def chat(self, http: httpx.AsyncClient, target: Target, request: dict[str, Any]) -> ChatResult: ...

    async def open_stream(self, http: httpx.AsyncClient, target: Target, request: dict[str, Any]) -> ChatStream:
        """Send the request and check the answer's status; raise UpstreamError before
        any chunk when the provider refuses, so the caller may still fall back."""
        ...

    async def embeddings(self, http: httpx.AsyncClient, target: Target, request: dict[str, Any]) -> EmbeddingResult: ...


@dataclass(slots=True)
class StreamState:
    """Bookkeeping shared by the adapters' stream implementations."""

    usage: Usage | None = None
    finished: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
