"""Embeddings through each adapter that has them."""

from __future__ import annotations

import math

import httpx
import pytest

from providers.adapters import get_adapter
from providers.adapters.base import UpstreamError

from .provider_testkit import EMBEDDING_MODELS, make_target

DEFAULT_DIMENSIONS = {"openai": 1536, "azure_openai": 1536, "gemini": 768}


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", tuple(EMBEDDING_MODELS))
async def test_embeddings_default_dimensions(sim_url: str, http: httpx.AsyncClient, kind: str) -> None:
    target = make_target(sim_url, kind, EMBEDDING_MODELS[kind])
    request = {"model": target.upstream_model, "input": ["hello world", "second text", "hello world"]}
    result = await get_adapter(kind).embeddings(http, target, request)
    data = result.body["data"]
    assert result.body["object"] == "list" and len(data) == 3
    assert [item["index"] for item in data] == [0, 1, 2]
    vectors = [item["embedding"] for item in data]
    assert all(len(v) == DEFAULT_DIMENSIONS[kind] for v in vectors)
    assert vectors[0] == vectors[2] and vectors[0] != vectors[1]
    assert math.isclose(sum(x * x for x in vectors[0]), 1.0, rel_tol=1e-4)
    assert result.usage.prompt_tokens > 0
    assert result.body["usage"]["prompt_tokens"] == result.usage.prompt_tokens


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", tuple(EMBEDDING_MODELS))
async def test_embeddings_dimensions(sim_url: str, http: httpx.AsyncClient, kind: str) -> None:
    target = make_target(sim_url, kind, EMBEDDING_MODELS[kind])
    request = {"model": target.upstream_model, "input": "just one", "dimensions": 256}
    result = await get_adapter(kind).embeddings(http, target, request)
    assert len(result.body["data"]) == 1
    assert len(result.body["data"][0]["embedding"]) == 256


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ("openai", "gemini"))
async def test_embeddings_base64(sim_url: str, http: httpx.AsyncClient, kind: str) -> None:
    target = make_target(sim_url, kind, EMBEDDING_MODELS[kind])
    request = {"model": target.upstream_model, "input": "packed", "dimensions": 8, "encoding_format": "base64"}
    result = await get_adapter(kind).embeddings(http, target, request)
    encoded = result.body["data"][0]["embedding"]
    assert isinstance(encoded, str) and len(encoded) == 44  # 8 float32 values


@pytest.mark.asyncio
async def test_anthropic_has_no_embeddings(sim_url: str, http: httpx.AsyncClient) -> None:
    target = make_target(sim_url, "anthropic", "claude-sonnet-4-5")
    with pytest.raises(UpstreamError) as info:
        await get_adapter("anthropic").embeddings(http, target, {"model": "x", "input": "hi"})
    assert info.value.status == 400 and not info.value.retryable


@pytest.mark.asyncio
async def test_gemini_refuses_token_arrays(sim_url: str, http: httpx.AsyncClient) -> None:
    target = make_target(sim_url, "gemini", "text-embedding-004")
    with pytest.raises(UpstreamError) as info:
        await get_adapter("gemini").embeddings(http, target, {"model": "x", "input": [[1, 2, 3]]})
    assert info.value.status == 400 and info.value.param == "input"
