"""Pure translation and mapping logic, without any network."""

from __future__ import annotations

import time

import pytest

from providers import tokens
from providers.adapters._errors import error_from_event, error_from_response
from providers.adapters._gemini_schema import to_gemini_schema
from providers.adapters._http import SSEDecoder
from providers.adapters.anthropic import build_payload as anthropic_payload
from providers.adapters.base import Target
from providers.adapters.gemini import build_payload as gemini_payload

TARGET = Target(
    provider_kind="anthropic", base_url="http://x", api_key="k", upstream_model="claude-x", default_max_tokens=777
)


def test_anthropic_payload_lifts_system_merges_roles_and_maps_tools() -> None:
    request = {
        "model": "claude-x",
        "messages": [
            {"role": "system", "content": "Rule one."},
            {"role": "developer", "content": [{"type": "text", "text": "Rule two."}]},
            {"role": "user", "content": "Hi"},
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]},
            {
                "role": "assistant",
                "content": "Checking.",
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "42"},
            {"role": "user", "content": "Thanks"},
        ],
        "stop": "END",
        "temperature": 1.7,
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}],
        "tool_choice": "required",
        "parallel_tool_calls": False,
        "response_format": {"type": "json_object"},
    }
    payload = anthropic_payload(TARGET, request, stream=True)
    assert payload["system"].startswith("Rule one.\n\nRule two.\n\nRespond only with a single valid JSON object")
    assert payload["max_tokens"] == 777 and payload["stream"] is True
    assert payload["temperature"] == 1.0 and payload["stop_sequences"] == ["END"]
    assert payload["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    roles = [m["role"] for m in payload["messages"]]
    assert roles == ["user", "assistant", "user"]
    first, assistant, last = payload["messages"]
    assert first["content"][1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"},
    }
    assert assistant["content"][1] == {"type": "tool_use", "id": "c1", "name": "f", "input": {"a": 1}}
    assert last["content"][0] == {"type": "tool_result", "tool_use_id": "c1", "content": "42"}
    assert last["content"][1] == {"type": "text", "text": "Thanks"}


def test_gemini_payload_roles_tools_and_json_schema() -> None:
    request = {
        "model": "g",
        "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "Weather?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "c9", "type": "function", "function": {"name": "weather", "arguments": "{}"}}],
            },
            {"role": "tool", "tool_call_id": "c9", "content": "sunny"},
        ],
        "max_tokens": 50,
        "tools": [
            {"type": "function", "function": {"name": "weather", "parameters": {"type": "object", "properties": {}}}}
        ],
        "tool_choice": {"type": "function", "function": {"name": "weather"}},
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "x", "schema": {"type": "object", "properties": {"a": {"type": "string"}}}},
        },
    }
    payload = gemini_payload(request)
    assert payload["systemInstruction"] == {"parts": [{"text": "Be terse."}]}
    assert [c["role"] for c in payload["contents"]] == ["user", "model", "user"]
    assert payload["contents"][2]["parts"][0] == {
        "functionResponse": {"name": "weather", "response": {"result": "sunny"}}
    }
    assert payload["generationConfig"]["maxOutputTokens"] == 50
    assert payload["generationConfig"]["responseSchema"] == {"type": "OBJECT", "properties": {"a": {"type": "STRING"}}}
    assert "parameters" not in payload["tools"][0]["functionDeclarations"][0]  # Gemini refuses empty OBJECTs
    assert payload["toolConfig"] == {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["weather"]}}


def test_gemini_schema_rewrite() -> None:
    schema = {
        "type": "object",
        "properties": {
            "kind": {"const": "a"},
            "when": {"type": ["string", "null"], "format": "date-time"},
            "size": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
            "child": {"$ref": "#/$defs/child"},
            "mail": {"type": "string", "format": "email"},
        },
        "required": ["kind", "child", "ghost"],
        "additionalProperties": False,
        "$defs": {"child": {"type": "object", "properties": {"n": {"type": "number"}}, "additionalProperties": False}},
    }
    assert to_gemini_schema(schema) == {
        "type": "OBJECT",
        "properties": {
            "kind": {"enum": ["a"], "type": "STRING"},
            "when": {"format": "date-time", "nullable": True, "type": "STRING"},
            "size": {"type": "INTEGER", "nullable": True},
            "child": {"type": "OBJECT", "properties": {"n": {"type": "NUMBER"}}},
            "mail": {"type": "STRING"},
        },
        "required": ["kind", "child"],
    }


def test_sse_decoder_handles_split_lines_and_crlf() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b'event: ping\ndata: {"a"') == []
    assert decoder.feed(b": 1}\n\ndata: x\r\n\r\ndata: y\ndata: z\n") == [(b"ping", b'{"a": 1}'), (b"", b"x")]
    assert decoder.feed(b"\n: comment\n\n") == [(b"", b"y\nz")]
    assert decoder.feed(b"data: tail") == []
    assert decoder.flush() == [(b"", b"tail")]


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            400,
            b'{"error":{"message":"This model\'s maximum context length is 8192 tokens.",'
            b'"type":"invalid_request_error","param":"messages","code":null}}',
            (400, "context_length_exceeded", False),
        ),
        (
            400,
            b'{"type":"error","error":{"type":"invalid_request_error",'
            b'"message":"prompt is too long: 300000 tokens > 200000 maximum"}}',
            (400, "context_length_exceeded", False),
        ),
        (
            400,
            b'{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.",'
            b'"status":"INVALID_ARGUMENT"}}',
            (502, "upstream_auth_failed", False),
        ),
        (
            400,
            b'{"error":{"message":"filtered","code":"content_filter","innererror":{"code":"ResponsibleAIPolicyViolation"}}}',
            (400, "content_policy_violation", False),
        ),
        (
            403,
            b'{"error":{"code":403,"message":"denied","status":"PERMISSION_DENIED"}}',
            (502, "upstream_auth_failed", False),
        ),
        (404, b'{"error":{"code":"DeploymentNotFound","message":"gone"}}', (502, "upstream_model_not_found", False)),
        (429, b'{"error":{"message":"slow down"}}', (429, "upstream_rate_limited", True)),
        (500, b"<html>oops</html>", (502, "upstream_server_error", True)),
        (
            529,
            b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}',
            (503, "upstream_overloaded", True),
        ),
        (302, b"", (502, "upstream_bad_response", True)),
        (402, b'{"error":{"message":"pay up"}}', (502, "upstream_rejected", False)),
    ],
)
def test_error_mapping(status: int, body: bytes, expected: tuple[int, str, bool]) -> None:
    error = error_from_response(status, body, {"retry-after": "7"})
    assert (error.status, error.code, error.retryable) == expected
    assert error.upstream_status == status
    if status == 429:
        assert error.retry_after == 7.0


def test_in_stream_errors() -> None:
    overloaded = error_from_event({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    assert (overloaded.status, overloaded.retryable) == (503, True)
    gemini = error_from_event({"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}})
    assert gemini.status == 429
    openai = error_from_event({"error": {"message": "boom", "type": "server_error", "param": None, "code": None}})
    assert (openai.status, openai.code) == (502, "upstream_server_error")


def test_token_estimates() -> None:
    assert tokens.count_tokens("") == 0
    assert tokens.count_tokens("abc") == 1 and tokens.count_tokens("abcd") == 2
    messages = [
        {"role": "system", "content": "x" * 30},
        {
            "role": "user",
            "content": [{"type": "text", "text": "y" * 9}, {"type": "image_url", "image_url": {"url": "u"}}],
        },
        {"role": "assistant", "content": None, "tool_calls": [{"function": {"name": "abc", "arguments": "{}"}}]},
    ]
    assert tokens.estimate_prompt_tokens(messages) == 3 + (4 + 10) + (4 + 3 + tokens.IMAGE_TOKENS) + (4 + 1 + 1)
    assert tokens.estimate_text_tokens(["abcdef", [1, 2, 3], {"k": "abc"}, None]) == 2 + 3 + 1
    assert tokens.count_tokens_exact("hello world") == 2


def test_token_count_is_fast() -> None:
    text = "The quick brown fox jumps over the lazy dog while the gateway counts tokens. " * 3
    text = text[:200]
    rounds = 20_000
    started = time.perf_counter()
    for _ in range(rounds):
        tokens.count_tokens(text)
    per_call = (time.perf_counter() - started) / rounds
    assert per_call < 5e-6
