"""Every adapter against the simulator: chat, streams, tools, JSON mode, limits, caching."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from providers.adapters import get_adapter
from providers.adapters.base import Target

from .provider_testkit import CHAT_KINDS, MODELS, make_target

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer"},
            },
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}


def chat_request(target: Target, text: str = "What is the capital of France?", **extra: Any) -> dict[str, Any]:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]
    return {"model": target.upstream_model, "messages": messages, **extra}


async def collect(stream: Any) -> tuple[list[dict[str, Any]], str, dict[int, dict[str, str]], str | None]:
    """All chunks, the joined content, tool calls by index, and the last finish reason."""
    chunks, content, calls, finish = [], "", {}, None
    async for chunk in stream:
        chunks.append(chunk)
        assert chunk["object"] == "chat.completion.chunk"
        for choice in chunk["choices"]:
            delta = choice["delta"]
            content += delta.get("content") or ""
            for call in delta.get("tool_calls") or ():
                slot = calls.setdefault(call["index"], {"id": "", "name": "", "arguments": ""})
                slot["id"] = call.get("id") or slot["id"]
                function = call.get("function") or {}
                slot["name"] += function.get("name") or ""
                slot["arguments"] += function.get("arguments") or ""
            finish = choice.get("finish_reason") or finish
    return chunks, content, calls, finish


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", CHAT_KINDS)
async def test_chat_answers_with_usage(sim_url: str, http: httpx.AsyncClient, kind: str) -> None:
    target = make_target(sim_url, kind, MODELS[kind])
    result = await get_adapter(kind).chat(http, target, chat_request(target))
    choice = result.body["choices"][0]
    assert result.body["object"] == "chat.completion"
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"].startswith("Simulated answer to: What is the capital of France?")
    assert choice["finish_reason"] == "stop"
    assert result.usage.prompt_tokens > 0 and result.usage.completion_tokens > 0
    assert not result.usage.estimated
    assert result.body["usage"]["prompt_tokens"] == result.usage.prompt_tokens


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", CHAT_KINDS)
async def test_stream_reassembles_to_the_plain_answer(sim_url: str, http: httpx.AsyncClient, kind: str) -> None:
    target = make_target(sim_url, kind, MODELS[kind])
    adapter = get_adapter(kind)
    plain = await adapter.chat(http, target, chat_request(target))
    stream = await adapter.open_stream(http, target, chat_request(target))
    chunks, content, calls, finish = await collect(stream)
    await stream.aclose()
    assert content == plain.body["choices"][0]["message"]["content"]
    assert chunks[0]["choices"][0]["delta"].get("role") == "assistant"
    assert finish == "stop" and not calls
    assert all(chunk["choices"] for chunk in chunks), "usage-only chunks are kept back"
    assert stream.usage is not None and not stream.usage.estimated
    assert stream.usage.completion_tokens == plain.usage.completion_tokens
    assert stream.usage.prompt_tokens == plain.usage.prompt_tokens


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", CHAT_KINDS)
async def test_tool_call(sim_url: str, http: httpx.AsyncClient, kind: str) -> None:
    target = make_target(sim_url, kind, MODELS[kind])
    adapter = get_adapter(kind)
    request = chat_request(target, "Weather in Paris?", tools=[WEATHER_TOOL], tool_choice="auto")
    result = await adapter.chat(http, target, request)
    choice = result.body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["type"] == "function" and call["id"]
    assert call["function"]["name"] == "get_weather"
    arguments = json.loads(call["function"]["arguments"])
    assert isinstance(arguments["city"], str) and arguments["unit"] == "celsius"

    stream = await adapter.open_stream(http, target, request)
    _, _, calls, finish = await collect(stream)
    assert finish == "tool_calls"
    assert calls[0]["name"] == "get_weather" and calls[0]["id"]
    assert json.loads(calls[0]["arguments"]) == arguments
    assert stream.usage is not None and stream.usage.completion_tokens > 0


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", CHAT_KINDS)
async def test_tool_result_round_trip(sim_url: str, http: httpx.AsyncClient, kind: str) -> None:
    """Assistant tool calls and tool results translate into a conversation the provider accepts."""
    target = make_target(sim_url, kind, MODELS[kind])
    messages = [
        {"role": "system", "content": "Use tools."},
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris", "unit": "celsius"}'},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Rome", "unit": "celsius"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 18}'},
        {"role": "tool", "tool_call_id": "call_2", "content": "21 degrees"},
    ]
    request = {"model": target.upstream_model, "messages": messages, "tools": [WEATHER_TOOL]}
    result = await get_adapter(kind).chat(http, target, request)
    choice = result.body["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["content"].startswith("Simulated answer using the tool result")


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", CHAT_KINDS)
async def test_tool_choice_none_answers_in_text(sim_url: str, http: httpx.AsyncClient, kind: str) -> None:
    target = make_target(sim_url, kind, MODELS[kind])
    request = chat_request(target, tools=[WEATHER_TOOL], tool_choice="none")
    result = await get_adapter(kind).chat(http, target, request)
    assert result.body["choices"][0]["finish_reason"] == "stop"
    assert "tool_calls" not in result.body["choices"][0]["message"]


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", CHAT_KINDS)
async def test_json_object_mode(sim_url: str, http: httpx.AsyncClient, kind: str) -> None:
    target = make_target(sim_url, kind, MODELS[kind])
    adapter = get_adapter(kind)
    request = chat_request(target, "List three colours as JSON.", response_format={"type": "json_object"})
    result = await adapter.chat(http, target, request)
    assert isinstance(json.loads(result.body["choices"][0]["message"]["content"]), dict)
    stream = await adapter.open_stream(http, target, request)
    _, content, _, _ = await collect(stream)
    assert isinstance(json.loads(content), dict)


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", CHAT_KINDS)
async def test_json_schema_mode(sim_url: str, http: httpx.AsyncClient, kind: str) -> None:
    target = make_target(sim_url, kind, MODELS[kind])
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "age": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "address": {"$ref": "#/$defs/address"},
            "nickname": {"type": ["string", "null"]},
        },
        "required": ["name", "age", "tags", "address"],
        "additionalProperties": False,
        "$defs": {
            "address": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "zip": {"type": "string"}},
                "required": ["city"],
                "additionalProperties": False,
            }
        },
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "person", "schema": schema, "strict": True}}
    result = await get_adapter(kind).chat(http, target, chat_request(target, "Describe a person.", response_format=fmt))
    value = json.loads(result.body["choices"][0]["message"]["content"])
    assert isinstance(value["name"], str) and isinstance(value["age"], int)
    assert isinstance(value["tags"], list) and isinstance(value["address"]["city"], str)


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", CHAT_KINDS)
async def test_max_tokens_cuts_with_length(sim_url: str, http: httpx.AsyncClient, kind: str) -> None:
    target = make_target(sim_url, kind, MODELS[kind])
    adapter = get_adapter(kind)
    result = await adapter.chat(http, target, chat_request(target, max_tokens=5))
    assert result.body["choices"][0]["finish_reason"] == "length"
    assert 0 < result.usage.completion_tokens <= 5
    stream = await adapter.open_stream(http, target, chat_request(target, max_completion_tokens=5))
    _, content, _, finish = await collect(stream)
    assert finish == "length" and content == result.body["choices"][0]["message"]["content"]


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", CHAT_KINDS)
async def test_stop_sequence(sim_url: str, http: httpx.AsyncClient, kind: str) -> None:
    target = make_target(sim_url, kind, MODELS[kind])
    result = await get_adapter(kind).chat(http, target, chat_request(target, stop=["capital"]))
    assert result.body["choices"][0]["message"]["content"] == "Simulated answer to: What is the "
    assert result.body["choices"][0]["finish_reason"] == "stop"


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", CHAT_KINDS)
async def test_images_translate(sim_url: str, http: httpx.AsyncClient, kind: str) -> None:
    target = make_target(sim_url, kind, MODELS[kind])
    content = [
        {"type": "text", "text": "What is in these pictures?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"}},
    ]
    request = {"model": target.upstream_model, "messages": [{"role": "user", "content": content}]}
    result = await get_adapter(kind).chat(http, target, request)
    assert result.body["choices"][0]["message"]["content"].startswith("Simulated answer to: What is in these pictures?")


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", CHAT_KINDS)
async def test_repeated_long_prefix_reports_cached_tokens(sim_url: str, http: httpx.AsyncClient, kind: str) -> None:
    target = make_target(sim_url, kind, MODELS[kind])
    adapter = get_adapter(kind)
    long_text = f"Reference manual for {kind}. " + "The gateway routes requests to deployments. " * 120
    system: Any = long_text
    if kind == "anthropic":
        # Anthropic caches only what the request marks; the system part keeps its mark.
        system = [{"type": "text", "text": long_text, "cache_control": {"type": "ephemeral"}}]
    messages = [
        {"role": "system", "content": system},
        {"role": "user", "content": "Summarise it."},
        {"role": "assistant", "content": "It routes requests."},
        {"role": "user", "content": "More detail please."},
    ]
    request = {"model": target.upstream_model, "messages": messages}
    first = await adapter.chat(http, target, request)
    second = await adapter.chat(http, target, request)
    assert first.usage.cached_tokens == 0
    assert second.usage.cached_tokens >= 1024
    assert second.usage.prompt_tokens >= second.usage.cached_tokens
    assert second.body["usage"]["prompt_tokens_details"]["cached_tokens"] == second.usage.cached_tokens


@pytest.mark.asyncio
async def test_openai_compatible_server_without_key_or_usage(sim_url: str, http: httpx.AsyncClient) -> None:
    """No Authorization header goes out for a keyless target (the simulator then refuses, as OpenAI would)."""
    target = make_target(sim_url, "openai", "llama-3.1-8b", api_key="")
    with pytest.raises(Exception) as info:
        await get_adapter("openai").chat(http, target, chat_request(target))
    assert getattr(info.value, "code", None) == "upstream_auth_failed"
