"""The simulator's wire formats: refusals shaped like each real provider's, and stream framing."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

OPENAI_AUTH = {"authorization": "Bearer sk-test", "x-sim-latency-scale": "0"}
ANTHROPIC_AUTH = {"x-api-key": "k", "anthropic-version": "2023-06-01", "x-sim-latency-scale": "0"}
GEMINI_AUTH = {"x-goog-api-key": "k", "x-sim-latency-scale": "0"}
USER = [{"role": "user", "content": "Hello"}]


async def post(http: httpx.AsyncClient, url: str, body: Any, headers: dict[str, str]) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await http.post(url, content=content, headers={"content-type": "application/json", **headers})


def openai_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


# --- OpenAI ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_openai_auth(sim_url: str, http: httpx.AsyncClient) -> None:
    url = f"{sim_url}/openai/v1/chat/completions"
    body = {"model": "gpt-4o-mini", "messages": USER}
    error = openai_error(await post(http, url, body, {}), 401)
    assert error["type"] == "invalid_request_error" and "didn't provide an API key" in error["message"]
    error = openai_error(await post(http, url, body, {"authorization": "Bearer "}), 401)
    assert error["code"] == "invalid_api_key"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"model": "gpt-4o-mini"}, "messages", "missing_required_parameter"),
        ({"model": "gpt-4o-mini", "messages": []}, "messages", "empty_array"),
        (
            {"model": "gpt-4o-mini", "messages": [{"role": "wizard", "content": "x"}]},
            "messages[0].role",
            "invalid_value",
        ),
        ({"model": "gpt-4o-mini", "messages": USER, "temperature": 3}, "temperature", "decimal_above_max_value"),
        ({"model": "gpt-4o-mini", "messages": USER, "max_tokens": "10"}, "max_tokens", "invalid_type"),
        ({"model": "gpt-4o-mini", "messages": USER, "stream_options": {"include_usage": True}}, "stream_options", None),
        ({"model": "gpt-4o-mini", "messages": USER, "response_format": {"type": "json_object"}}, "messages", None),
        (
            {"model": "gpt-4o-mini", "messages": [{"role": "tool", "content": "x"}]},
            "messages[0].tool_call_id",
            "missing_required_parameter",
        ),
        (
            {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": [{"type": "image", "x": 1}]}]},
            "messages[0].content[0].type",
            "invalid_value",
        ),
    ],
)
async def test_openai_validation(
    sim_url: str, http: httpx.AsyncClient, body: dict, param: str, code: str | None
) -> None:
    error = openai_error(await post(http, f"{sim_url}/openai/v1/chat/completions", body, OPENAI_AUTH), 400)
    assert error["type"] == "invalid_request_error"
    assert (error["param"], error["code"]) == (param, code)


@pytest.mark.asyncio
async def test_openai_unknown_argument_and_bad_json(sim_url: str, http: httpx.AsyncClient) -> None:
    url = f"{sim_url}/openai/v1/chat/completions"
    error = openai_error(await post(http, url, {"model": "m", "messages": USER, "routing": "x"}, OPENAI_AUTH), 400)
    assert error["message"] == "Unrecognized request argument supplied: routing"
    error = openai_error(await post(http, url, b"{not json", OPENAI_AUTH), 400)
    assert "could not parse the JSON body" in error["message"]


@pytest.mark.asyncio
async def test_openai_models_and_short_paths(sim_url: str, http: httpx.AsyncClient) -> None:
    response = await http.get(f"{sim_url}/openai/v1/models", headers=OPENAI_AUTH)
    assert response.status_code == 200 and response.json()["object"] == "list"
    short = await post(http, f"{sim_url}/openai/chat/completions", {"model": "m", "messages": USER}, OPENAI_AUTH)
    assert short.status_code == 200
    missing = await post(http, f"{sim_url}/openai/v1/completions", {}, OPENAI_AUTH)
    assert missing.status_code == 404


@pytest.mark.asyncio
async def test_openai_stream_framing(sim_url: str, http: httpx.AsyncClient) -> None:
    url = f"{sim_url}/openai/v1/chat/completions"
    body = {"model": "gpt-4o-mini", "messages": USER, "stream": True}
    plain = await post(http, url, body, OPENAI_AUTH)
    assert plain.headers["content-type"].startswith("text/event-stream")
    events = [block for block in plain.text.split("\n\n") if block]
    assert all(block.startswith("data: ") and "\n" not in block for block in events)
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(block[6:]) for block in events[:-1]]
    assert all(chunk["choices"] for chunk in chunks) and "usage" not in chunks[0]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"

    with_usage = await post(http, url, {**body, "stream_options": {"include_usage": True}}, OPENAI_AUTH)
    chunks = [json.loads(block[6:]) for block in with_usage.text.split("\n\n") if block and block != "data: [DONE]"]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0
    assert all(chunk["usage"] is None for chunk in chunks[:-1])
    assert "cached_tokens" in chunks[-1]["usage"]["prompt_tokens_details"]


# --- Azure ------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_azure_requires_key_and_version(sim_url: str, http: httpx.AsyncClient) -> None:
    base = f"{sim_url}/azure/openai/deployments/prod-4o/chat/completions"
    body = {"messages": USER}
    no_key = await post(http, base + "?api-version=2024-10-21", body, {})
    assert no_key.status_code == 401 and no_key.json()["error"]["code"] == "401"
    no_version = await post(http, base, body, {"api-key": "k"})
    assert no_version.status_code == 404 and no_version.json() == {
        "error": {"code": "404", "message": "Resource not found"}
    }
    fine = await post(http, base + "?api-version=2024-10-21", body, {"api-key": "k", "x-sim-latency-scale": "0"})
    assert fine.status_code == 200 and fine.json()["model"] == "prod-4o"
    assert fine.json()["prompt_filter_results"][0]["content_filter_results"]["hate"]["filtered"] is False


# --- Anthropic --------------------------------------------------------------------------


def anthropic_error(response: httpx.Response, status: int, type_: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == type_
    return body["error"]["message"]


@pytest.mark.asyncio
async def test_anthropic_headers(sim_url: str, http: httpx.AsyncClient) -> None:
    url = f"{sim_url}/anthropic/v1/messages"
    body = {"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": USER}
    assert (
        anthropic_error(await post(http, url, body, {}), 401, "authentication_error") == "x-api-key header is required"
    )
    message = anthropic_error(await post(http, url, body, {"x-api-key": "k"}), 400, "invalid_request_error")
    assert message == "anthropic-version: header is required"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"model": "claude-sonnet-4-5", "messages": USER}, "max_tokens: Field required"),
        ({"model": "claude-sonnet-4-5", "max_tokens": 10}, "messages: Field required"),
        (
            {"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": [{"role": "system", "content": "x"}]},
            'Unexpected role "system"',
        ),
        (
            {"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": [{"role": "tool", "content": "x"}]},
            "Input should be 'user' or 'assistant'",
        ),
        ({"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": USER, "temperature": 1.5}, "temperature"),
        (
            {"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": USER, "response_format": {}},
            "Extra inputs are not permitted",
        ),
        (
            {
                "model": "claude-sonnet-4-5",
                "max_tokens": 10,
                "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": "x"}]}],
            },
            "does not match any of the expected tags",
        ),
        (
            {
                "model": "claude-sonnet-4-5",
                "max_tokens": 10,
                "messages": [
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "x"}]}
                ],
            },
            "must have a corresponding `tool_use` block",
        ),
        (
            {
                "model": "claude-sonnet-4-5",
                "max_tokens": 10,
                "messages": [
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}]},
                    {"role": "user", "content": "and?"},
                ],
            },
            "without `tool_result` blocks immediately after",
        ),
    ],
)
async def test_anthropic_validation(sim_url: str, http: httpx.AsyncClient, body: dict, needle: str) -> None:
    message = anthropic_error(
        await post(http, f"{sim_url}/anthropic/v1/messages", body, ANTHROPIC_AUTH), 400, "invalid_request_error"
    )
    assert needle in message


@pytest.mark.asyncio
async def test_anthropic_stream_framing(sim_url: str, http: httpx.AsyncClient) -> None:
    body = {"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": USER, "stream": True}
    response = await post(http, f"{sim_url}/anthropic/v1/messages", body, ANTHROPIC_AUTH)
    assert response.headers["content-type"].startswith("text/event-stream")
    names = []
    for block in filter(None, response.text.split("\n\n")):
        event_line, data_line = block.split("\n")
        name = event_line.removeprefix("event: ")
        assert json.loads(data_line.removeprefix("data: "))["type"] == name
        names.append(name)
    assert names[:4] == ["message_start", "content_block_start", "ping", "content_block_delta"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]


# --- Gemini -----------------------------------------------------------------------------


def gemini_error(response: httpx.Response, status: int, rpc_status: str) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == status and error["status"] == rpc_status
    return error["message"]


@pytest.mark.asyncio
async def test_gemini_auth(sim_url: str, http: httpx.AsyncClient) -> None:
    url = f"{sim_url}/gemini/v1beta/models/gemini-2.5-flash:generateContent"
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    assert "unregistered callers" in gemini_error(await post(http, url, body, {}), 403, "PERMISSION_DENIED")
    by_query = await post(http, url + "?key=k", body, {"x-sim-latency-scale": "0"})
    assert by_query.status_code == 200 and by_query.json()["candidates"][0]["finishReason"] == "STOP"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({}, "contents is not specified"),
        ({"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]}, "Please use a valid role: user, model."),
        ({"contents": [{"role": "user", "parts": []}]}, "contents.parts must not be empty"),
        ({"contents": [{"role": "user", "parts": [{"type": "text", "text": "x"}]}]}, 'Unknown name "type"'),
        ({"contents": [{"parts": [{"text": "x"}]}], "messages": []}, 'Unknown name "messages"'),
        (
            {"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"max_tokens": 5}},
            'Unknown name "max_tokens"',
        ),
        (
            {
                "contents": [{"parts": [{"text": "x"}]}],
                "generationConfig": {
                    "responseMimeType": "application/json",
                    "responseSchema": {"type": "object", "additionalProperties": False},
                },
            },
            'Unknown name "additionalProperties"',
        ),
        (
            {"contents": [{"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {}}}]}]},
            "comes immediately after a function call",
        ),
    ],
)
async def test_gemini_validation(sim_url: str, http: httpx.AsyncClient, body: dict, needle: str) -> None:
    url = f"{sim_url}/gemini/v1beta/models/gemini-2.5-flash:generateContent"
    assert needle in gemini_error(await post(http, url, body, GEMINI_AUTH), 400, "INVALID_ARGUMENT")


@pytest.mark.asyncio
async def test_gemini_stream_framing(sim_url: str, http: httpx.AsyncClient) -> None:
    base = f"{sim_url}/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    body = {"contents": [{"role": "user", "parts": [{"text": "Tell me something"}]}]}
    sse = await post(http, base + "?alt=sse", body, GEMINI_AUTH)
    assert sse.headers["content-type"].startswith("text/event-stream")
    assert sse.text.endswith("\r\n\r\n")
    events = [json.loads(block.removeprefix("data: ")) for block in sse.text.split("\r\n\r\n") if block]
    assert events[-1]["candidates"][0]["finishReason"] == "STOP"
    assert events[-1]["usageMetadata"]["candidatesTokenCount"] > 0
    assert "finishReason" not in events[0]["candidates"][0]
    array = await post(http, base, body, GEMINI_AUTH)
    assert array.headers["content-type"].startswith("application/json")
    items = array.json()
    assert isinstance(items, list) and "".join(
        i["candidates"][0]["content"]["parts"][0]["text"] for i in items
    ) == "".join(e["candidates"][0]["content"]["parts"][0]["text"] for e in events)


@pytest.mark.asyncio
async def test_gemini_embed_content(sim_url: str, http: httpx.AsyncClient) -> None:
    url = f"{sim_url}/gemini/v1beta/models/text-embedding-004:embedContent"
    response = await post(http, url, {"content": {"parts": [{"text": "hello"}]}}, GEMINI_AUTH)
    assert response.status_code == 200 and len(response.json()["embedding"]["values"]) == 768
    batch = f"{sim_url}/gemini/v1beta/models/text-embedding-004:batchEmbedContents"
    wrong = await post(
        http, batch, {"requests": [{"model": "models/other", "content": {"parts": [{"text": "x"}]}}]}, GEMINI_AUTH
    )
    assert wrong.status_code == 400


@pytest.mark.asyncio
async def test_gemini_fault_bodies(sim_url: str, http: httpx.AsyncClient) -> None:
    url = f"{sim_url}/gemini/v1beta/models/gemini-2.5-flash:generateContent"
    body = {"contents": [{"parts": [{"text": "x"}]}]}
    limited = await post(http, url, body, {**GEMINI_AUTH, "x-sim-fault": "429"})
    gemini_error(limited, 429, "RESOURCE_EXHAUSTED")
    assert limited.headers["retry-after"] == "1"
    message = gemini_error(await post(http, url, body, {**GEMINI_AUTH, "x-sim-fault": "401"}), 400, "INVALID_ARGUMENT")
    assert message.startswith("API key not valid")
    bad_gateway = await post(http, url, body, {**GEMINI_AUTH, "x-sim-fault": "502"})
    assert bad_gateway.status_code == 502 and bad_gateway.headers["content-type"].startswith("text/html")
