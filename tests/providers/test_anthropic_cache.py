"""Anthropic prompt caching over real HTTP against the simulator: `cache_control` on a
system message is kept, and cache writes are reported by lifetime (5 minutes, 1 hour),
in plain answers and in streams."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from providers.adapters import get_adapter
from providers.adapters.anthropic import build_payload, usage_of

from .provider_testkit import MODELS, make_target

pytestmark = pytest.mark.asyncio


def long_text(label: str) -> str:
    # Unique per test: the simulator's prompt cache lives as long as the test session.
    return f"Reference {label} {uuid.uuid4().hex}. " + "The gateway routes requests to deployments. " * 120


def cached_system_request(model: str, text: str, ttl: str | None = None, question: str = "Summarise it.") -> dict:
    control: dict[str, Any] = {"type": "ephemeral"}
    if ttl:
        control["ttl"] = ttl
    return {
        "model": model,
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": text, "cache_control": control}]},
            {"role": "user", "content": question},
        ],
    }


async def test_system_cache_control_is_kept_in_the_payload():
    target = make_target("http://unused", "anthropic", MODELS["anthropic"])
    request = cached_system_request(target.upstream_model, "Long manual.", ttl="1h")
    request["messages"].insert(0, {"role": "developer", "content": "Be brief."})
    request["response_format"] = {"type": "json_object"}
    payload = build_payload(target, request, stream=False)
    assert payload["system"][0] == {"type": "text", "text": "Be brief."}
    assert payload["system"][1] == {
        "type": "text",
        "text": "Long manual.",
        "cache_control": {"type": "ephemeral", "ttl": "1h"},
    }
    assert "JSON" in payload["system"][2]["text"]


async def test_system_without_cache_control_stays_one_string():
    target = make_target("http://unused", "anthropic", MODELS["anthropic"])
    request = {
        "model": target.upstream_model,
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}]},
            {"role": "system", "content": "C"},
            {"role": "user", "content": "hi"},
        ],
    }
    assert build_payload(target, request, stream=False)["system"] == "AB\n\nC"


async def test_a_marked_system_prompt_is_written_then_read(sim_url: str, http: httpx.AsyncClient):
    target = make_target(sim_url, "anthropic", MODELS["anthropic"])
    adapter = get_adapter("anthropic")
    request = cached_system_request(target.upstream_model, long_text("system"))
    first = await adapter.chat(http, target, request)
    second = await adapter.chat(http, target, request)
    assert first.usage.cache_write_5m_tokens >= 1024
    assert first.usage.cache_write_1h_tokens == 0
    assert first.usage.cached_tokens == 0
    assert first.usage.prompt_tokens > first.usage.cache_write_5m_tokens
    assert second.usage.cached_tokens >= 1024
    assert second.usage.cache_write_5m_tokens == second.usage.cache_write_1h_tokens == 0
    assert second.usage.prompt_tokens == first.usage.prompt_tokens


async def test_one_hour_and_five_minute_writes_are_told_apart(sim_url: str, http: httpx.AsyncClient):
    target = make_target(sim_url, "anthropic", MODELS["anthropic"])
    request = cached_system_request(target.upstream_model, long_text("hour"), ttl="1h")
    request["messages"][1] = {
        "role": "user",
        "content": [{"type": "text", "text": long_text("minutes"), "cache_control": {"type": "ephemeral"}}],
    }
    result = await get_adapter("anthropic").chat(http, target, request)
    usage = result.usage
    assert usage.cache_write_1h_tokens >= 1024  # the system prompt, up to the 1-hour breakpoint
    assert usage.cache_write_5m_tokens >= 1024  # the user message after it
    assert usage.prompt_tokens >= usage.cache_write_1h_tokens + usage.cache_write_5m_tokens


async def test_streams_report_cache_writes_too(sim_url: str, http: httpx.AsyncClient):
    target = make_target(sim_url, "anthropic", MODELS["anthropic"])
    adapter = get_adapter("anthropic")
    request = cached_system_request(target.upstream_model, long_text("stream"), ttl="1h")
    plain_twin = cached_system_request(target.upstream_model, long_text("plain"), ttl="1h")
    stream = await adapter.open_stream(http, target, request)
    async for _ in stream:
        pass
    plain = await adapter.chat(http, target, plain_twin)
    assert stream.usage is not None
    assert stream.usage.cache_write_1h_tokens >= 1024
    assert stream.usage.cache_write_5m_tokens == 0
    assert stream.usage.cache_write_1h_tokens == plain.usage.cache_write_1h_tokens


async def test_the_simulator_refuses_an_unknown_ttl_as_anthropic_does(sim_url: str, http: httpx.AsyncClient):
    target = make_target(sim_url, "anthropic", MODELS["anthropic"])
    request = cached_system_request(target.upstream_model, long_text("bad"), ttl="2h")
    with pytest.raises(Exception) as info:
        await get_adapter("anthropic").chat(http, target, request)
    assert getattr(info.value, "status", None) == 400
    assert "ttl" in str(info.value)


async def test_usage_without_the_cache_creation_object_counts_writes_as_five_minutes():
    usage = usage_of({"input_tokens": 10, "cache_creation_input_tokens": 2000, "output_tokens": 3})
    assert (usage.prompt_tokens, usage.cache_write_5m_tokens, usage.cache_write_1h_tokens) == (2010, 2000, 0)
    split = usage_of(
        {
            "input_tokens": 10,
            "cache_creation_input_tokens": 3000,
            "cache_read_input_tokens": 500,
            "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 2000},
            "output_tokens": 3,
        }
    )
    assert (split.prompt_tokens, split.cached_tokens) == (3510, 500)
    assert (split.cache_write_5m_tokens, split.cache_write_1h_tokens) == (1000, 2000)
