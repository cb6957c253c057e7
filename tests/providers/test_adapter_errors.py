"""Provider failures, injected by the simulator, come out of every adapter as mapped UpstreamErrors."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from providers.adapters import get_adapter
from providers.adapters.base import Target, UpstreamError

from .provider_testkit import CHAT_KINDS, FAST, MODELS, make_target

# fault -> (status, type, code, retryable); code None means "whatever fits".
EXPECTED: dict[str, tuple[int, str, str | None, bool]] = {
    "400": (400, "invalid_request_error", None, False),
    "401": (502, "upstream_error", "upstream_auth_failed", False),
    "403": (502, "upstream_error", "upstream_auth_failed", False),
    "404": (502, "upstream_error", "upstream_model_not_found", False),
    "429": (429, "rate_limit_error", "upstream_rate_limited", True),
    "500": (502, "upstream_error", "upstream_server_error", True),
    "502": (502, "upstream_error", "upstream_server_error", True),
    "503": (503, "upstream_error", "upstream_overloaded", True),
    "529": (503, "upstream_error", "upstream_overloaded", True),
    "malformed": (502, "upstream_error", "upstream_bad_response", True),
    "disconnect": (502, "upstream_error", "upstream_unreachable", True),
    "context_length": (400, "invalid_request_error", "context_length_exceeded", False),
    "content_filter": (400, "invalid_request_error", "content_policy_violation", False),
}


def faulty(sim_url: str, kind: str, fault: str, timeout: float = 10.0) -> Target:
    return make_target(sim_url, kind, MODELS[kind], headers=(*FAST, ("x-sim-fault", fault)), timeout=timeout)


def request_for(target: Target) -> dict[str, Any]:
    return {"model": target.upstream_model, "messages": [{"role": "user", "content": "Hello there"}]}


def check(error: UpstreamError, fault: str) -> None:
    status, type_, code, retryable = EXPECTED[fault]
    assert (error.status, error.type, error.retryable) == (status, type_, retryable), (fault, vars(error))
    if code is not None:
        assert error.code == code, (fault, vars(error))
    assert error.message


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", CHAT_KINDS)
@pytest.mark.parametrize("fault", tuple(EXPECTED))
async def test_chat_faults(sim_url: str, http: httpx.AsyncClient, kind: str, fault: str) -> None:
    target = faulty(sim_url, kind, fault)
    if fault == "content_filter" and kind == "anthropic":
        # Anthropic reports policy blocks as a plain 400 whose message names the policy.
        pass
    with pytest.raises(UpstreamError) as info:
        await get_adapter(kind).chat(http, target, request_for(target))
    check(info.value, fault)
    if fault == "429":
        assert getattr(info.value, "retry_after", None) == 1.0


OPEN_FAULTS = ("400", "401", "429", "500", "529", "context_length")


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", CHAT_KINDS)
@pytest.mark.parametrize("fault", OPEN_FAULTS)
async def test_stream_refused_before_any_chunk(sim_url: str, http: httpx.AsyncClient, kind: str, fault: str) -> None:
    target = faulty(sim_url, kind, fault)
    with pytest.raises(UpstreamError) as info:
        await get_adapter(kind).open_stream(http, target, request_for(target))
    check(info.value, fault)


async def drain(stream: Any) -> list[dict[str, Any]]:
    chunks: list[dict[str, Any]] = []
    try:
        async for chunk in stream:
            chunks.append(chunk)
    finally:
        await stream.aclose()
    return chunks


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", CHAT_KINDS)
async def test_stream_midstream_error_event(sim_url: str, http: httpx.AsyncClient, kind: str) -> None:
    target = faulty(sim_url, kind, "midstream")
    stream = await get_adapter(kind).open_stream(http, target, request_for(target))
    received: list[dict[str, Any]] = []
    with pytest.raises(UpstreamError) as info:
        async for chunk in stream:
            received.append(chunk)
    await stream.aclose()
    assert received, "some chunks arrive before the error"
    assert info.value.retryable and info.value.status in (502, 503)


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", CHAT_KINDS)
@pytest.mark.parametrize("fault", ("disconnect", "malformed"))
async def test_stream_broken_after_open(sim_url: str, http: httpx.AsyncClient, kind: str, fault: str) -> None:
    target = faulty(sim_url, kind, fault)
    stream = await get_adapter(kind).open_stream(http, target, request_for(target))
    with pytest.raises(UpstreamError) as info:
        await drain(stream)
    check(info.value, fault)


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", CHAT_KINDS)
async def test_timeouts(sim_url: str, http: httpx.AsyncClient, kind: str) -> None:
    target = faulty(sim_url, kind, "timeout", timeout=0.4)
    adapter = get_adapter(kind)
    started = time.monotonic()
    with pytest.raises(UpstreamError) as info:
        await adapter.chat(http, target, request_for(target))
    assert time.monotonic() - started < 2.0
    assert (info.value.status, info.value.type, info.value.retryable) == (504, "timeout", True)
    with pytest.raises(UpstreamError) as info:
        await adapter.open_stream(http, target, request_for(target))
    assert (info.value.status, info.value.type) == (504, "timeout")


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ("openai", "gemini"))
async def test_embedding_faults(sim_url: str, http: httpx.AsyncClient, kind: str) -> None:
    model = {"openai": "text-embedding-3-small", "gemini": "text-embedding-004"}[kind]
    for fault in ("429", "500", "malformed"):
        target = make_target(sim_url, kind, model, headers=(*FAST, ("x-sim-fault", fault)))
        with pytest.raises(UpstreamError) as info:
            await get_adapter(kind).embeddings(http, target, {"model": model, "input": "hi"})
        check(info.value, fault)


@pytest.mark.asyncio
async def test_unreachable_upstream(http: httpx.AsyncClient) -> None:
    target = Target(
        provider_kind="openai", base_url="http://127.0.0.1:9/v1", api_key="k", upstream_model="m", timeout=2
    )
    with pytest.raises(UpstreamError) as info:
        await get_adapter("openai").chat(http, target, {"model": "m", "messages": [{"role": "user", "content": "x"}]})
    assert (info.value.status, info.value.code, info.value.retryable) == (502, "upstream_unreachable", True)


@pytest.mark.asyncio
async def test_default_httpx_transport_maps_the_same(sim_url: str) -> None:
    """The stock httpx transport reports failures with other exception classes; the mapping holds."""
    async with httpx.AsyncClient() as client:
        for fault in ("disconnect", "timeout", "malformed", "429"):
            target = faulty(sim_url, "openai", fault, timeout=0.4)
            with pytest.raises(UpstreamError) as info:
                await get_adapter("openai").chat(client, target, request_for(target))
            expected = (504, "timeout", None, True) if fault == "timeout" else EXPECTED[fault]
            assert (info.value.status, info.value.type, info.value.retryable) == (expected[0], expected[1], expected[3])


@pytest.mark.asyncio
async def test_fault_rate_zero_never_fails(sim_url: str, http: httpx.AsyncClient) -> None:
    target = make_target(
        sim_url, "openai", "gpt-4o-mini", headers=(*FAST, ("x-sim-fault", "500"), ("x-sim-fault-rate", "0"))
    )
    for _ in range(5):
        result = await get_adapter("openai").chat(http, target, request_for(target))
        assert result.body["choices"]
