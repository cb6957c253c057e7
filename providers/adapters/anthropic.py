"""Anthropic Messages API, translated to and from OpenAI chat completions.

System messages move to the top-level `system`, tool calls and results become
`tool_use`/`tool_result` blocks, consecutive same-role turns merge (Anthropic
wants alternation), and JSON mode becomes an instruction since Anthropic has no
such switch. Streams translate the Messages SSE events into OpenAI chunks.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpx
import orjson

from ._convert import (
    ChunkMaker,
    completion_body,
    function_tools,
    image_url_of,
    json_instruction,
    load_arguments,
    max_tokens_of,
    parse_data_url,
    request_translation_error,
    stop_list,
    text_of,
    unsupported,
)
from ._errors import TRANSLATION_ERRORS, bad_response, error_from_event, headers_for
from ._http import SSEChatStream, open_stream, post_json, version_stamp
from .base import ChatResult, EmbeddingResult, Target, Usage

DEFAULT_VERSION = "2023-06-01"
FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "pause_turn": "stop",
    "refusal": "content_filter",
    "model_context_window_exceeded": "length",
}
_NONE: tuple[dict[str, Any], ...] = ()


def _image_block(part: dict[str, Any]) -> dict[str, Any]:
    url = image_url_of(part)
    inline = parse_data_url(url)
    if inline is not None:
        return {"type": "image", "source": {"type": "base64", "media_type": inline[0], "data": inline[1]}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _file_block(part: dict[str, Any]) -> dict[str, Any]:
    file = part.get("file") or {}
    data = file.get("file_data") if isinstance(file, dict) else None
    inline = parse_data_url(data) if isinstance(data, str) else None
    if inline is None:
        raise unsupported("Anthropic needs files inline as base64 data URLs (file_data).", "messages")
    return {"type": "document", "source": {"type": "base64", "media_type": inline[0], "data": inline[1]}}


def _blocks(content: Any) -> list[dict[str, Any]]:
    """Anthropic content blocks for an OpenAI user/assistant content value."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            if not part.get("text"):
                continue
            block: dict[str, Any] = {"type": "text", "text": part["text"]}
        elif kind == "image_url":
            block = _image_block(part)
        elif kind == "file":
            block = _file_block(part)
        elif kind == "refusal":
            continue
        else:
            raise unsupported(f"Anthropic models do not accept {kind!r} content parts.", "messages")
        if "cache_control" in part:
            block["cache_control"] = part["cache_control"]
        blocks.append(block)
    return blocks


def _system_blocks(content: Any) -> list[dict[str, Any]]:
    """System text blocks of one system message, each part's `cache_control` kept.

    Without any cache_control the message is one block (its parts joined), as
    before: only a part that marks a cache breakpoint needs to stay a part.
    """
    if isinstance(content, list) and any(isinstance(p, dict) and "cache_control" in p for p in content):
        blocks = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") not in ("text", None) or not part.get("text"):
                continue
            block: dict[str, Any] = {"type": "text", "text": part["text"]}
            if "cache_control" in part:
                block["cache_control"] = part["cache_control"]
            blocks.append(block)
        return blocks
    text = text_of(content)
    return [{"type": "text", "text": text}] if text else []


def _tool_use_blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = []
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        blocks.append(
            {
                "type": "tool_use",
                "id": call.get("id") or "",
                "name": function.get("name") or "",
                "input": load_arguments(function.get("arguments")),
            }
        )
    return blocks


def _tool_choice(request: dict[str, Any]) -> dict[str, Any] | None:
    choice = request.get("tool_choice")
    parallel = request.get("parallel_tool_calls")
    mapped: dict[str, Any] | None
    if choice is None:
        mapped = {"type": "auto"} if parallel is False else None
    elif choice == "auto":
        mapped = {"type": "auto"}
    elif choice == "required":
        mapped = {"type": "any"}
    elif choice == "none":
        return {"type": "none"}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        mapped = {"type": "tool", "name": choice["function"].get("name")}
    else:
        raise unsupported(f"Unsupported tool_choice {choice!r}.", "tool_choice")
    if mapped is not None and parallel is False:
        mapped["disable_parallel_tool_use"] = True
    return mapped


def build_payload(target: Target, request: dict[str, Any], stream: bool) -> dict[str, Any]:
    """An Anthropic Messages request for an OpenAI chat completion request."""
    system: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": role, "content": blocks})

    for message in request.get("messages") or ():
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            system.extend(_system_blocks(content))
        elif role == "user":
            add("user", _blocks(content))
        elif role == "assistant":
            add("assistant", _blocks(content) + _tool_use_blocks(message))
        elif role in ("tool", "function"):
            result = {
                "type": "tool_result",
                "tool_use_id": message.get("tool_call_id") or "",
                "content": text_of(content),
            }
            add("user", [result])
        else:
            raise unsupported(f"Unsupported message role {role!r}.", "messages")
    instruction = json_instruction(request)
    if instruction:
        system.append({"type": "text", "text": instruction})
    payload: dict[str, Any] = {
        "model": target.upstream_model,
        "max_tokens": max_tokens_of(request, target.default_max_tokens),
        "messages": messages,
    }
    if system:
        if any("cache_control" in block for block in system):
            # A cache breakpoint only exists on a block: keep the parts as text blocks.
            payload["system"] = system
        else:
            payload["system"] = "\n\n".join(block["text"] for block in system)
    temperature = request.get("temperature")
    if temperature is not None:
        payload["temperature"] = min(float(temperature), 1.0)
    elif request.get("top_p") is not None:
        # Current Claude models refuse temperature and top_p together; temperature wins.
        payload["top_p"] = request["top_p"]
    stops = [s for s in stop_list(request) if s.strip()]
    if stops:
        payload["stop_sequences"] = stops
    functions = function_tools(request)
    if functions:
        payload["tools"] = [
            {
                "name": f["name"],
                "description": f.get("description") or "",
                "input_schema": f.get("parameters") or {"type": "object", "properties": {}},
            }
            for f in functions
        ]
        choice = _tool_choice(request)
        if choice is not None:
            payload["tool_choice"] = choice
    user = request.get("user")
    if isinstance(user, str) and user:
        payload["metadata"] = {"user_id": user}
    if stream:
        payload["stream"] = True
    return payload


def _count(value: Any) -> int:
    try:
        return max(int(value or 0), 0)
    except (TypeError, ValueError):
        return 0


def usage_of(raw: Any) -> Usage:
    """OpenAI-style usage: cached reads and cache writes count as prompt tokens.

    Cache writes are split by lifetime from the `cache_creation` object
    (`ephemeral_5m_input_tokens`, `ephemeral_1h_input_tokens`); what it does not
    account for of `cache_creation_input_tokens` is a 5-minute write, the default.
    """
    if not isinstance(raw, dict):
        return Usage()
    read = _count(raw.get("cache_read_input_tokens"))
    written = _count(raw.get("cache_creation_input_tokens"))
    detail = raw.get("cache_creation")
    one_hour = five_minutes = 0
    if isinstance(detail, dict):
        one_hour = _count(detail.get("ephemeral_1h_input_tokens"))
        five_minutes = _count(detail.get("ephemeral_5m_input_tokens"))
    written = max(written, one_hour + five_minutes)
    return Usage(
        prompt_tokens=_count(raw.get("input_tokens")) + read + written,
        completion_tokens=_count(raw.get("output_tokens")),
        cached_tokens=read,
        cache_write_5m_tokens=written - one_hour,
        cache_write_1h_tokens=one_hour,
    )


def completion_from(body: Any, target: Target) -> ChatResult:
    if not isinstance(body, dict) or not isinstance(body.get("content"), list):
        if isinstance(body, dict) and body.get("type") == "error":
            raise error_from_event(body)
        raise bad_response("the message has no content list")
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in body["content"]:
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text") or "")
        elif kind == "tool_use":
            arguments = orjson.dumps(block.get("input") or {}).decode()
            calls.append(
                {"id": block["id"], "type": "function", "function": {"name": block["name"], "arguments": arguments}}
            )
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        message["tool_calls"] = calls
    usage = usage_of(body.get("usage"))
    finish = FINISH.get(body.get("stop_reason") or "end_turn", "stop")
    model = body.get("model") or target.upstream_model
    version_stamp(usage, body.get("model"))
    return ChatResult(
        body=completion_body("chatcmpl-" + str(body.get("id") or ""), model, message, finish, usage), usage=usage
    )


class AnthropicChatStream(SSEChatStream):
    """Messages SSE events -> OpenAI chunks."""

    def __init__(self, response: httpx.Response, target: Target, messages: Iterable[Any] = ()) -> None:
        super().__init__(response, target, messages)
        self._chunk = ChunkMaker(target.upstream_model)
        self._tools: dict[int, int] = {}  # Anthropic block index -> OpenAI tool call index
        self._finish = "stop"
        self._raw_usage: dict[str, Any] = {}

    def translate(self, event: bytes, data: bytes) -> Iterable[dict[str, Any]]:
        obj = orjson.loads(data)
        kind = obj.get("type")
        if kind == "content_block_delta":
            delta = obj["delta"]
            delta_kind = delta.get("type")
            if delta_kind == "text_delta":
                text = delta.get("text") or ""
                self._chars += len(text)
                return (self._chunk({"content": text}),)
            if delta_kind == "input_json_delta":
                index = self._tools[obj["index"]]
                fragment = delta.get("partial_json") or ""
                self._chars += len(fragment)
                return (self._chunk({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}),)
            return _NONE
        if kind == "message_start":
            message = obj["message"]
            self._chunk.id = "chatcmpl-" + str(message.get("id") or self._chunk.id)
            self._chunk.model = message.get("model") or self._chunk.model
            self.upstream_version = message.get("model") or ""
            self._raw_usage.update(message.get("usage") or {})
            return (self._chunk({"role": "assistant", "content": ""}),)
        if kind == "content_block_start":
            block = obj["content_block"]
            if block.get("type") == "tool_use":
                index = self._tools[obj["index"]] = len(self._tools)
                call = {
                    "index": index,
                    "id": block["id"],
                    "type": "function",
                    "function": {"name": block["name"], "arguments": ""},
                }
                return (self._chunk({"tool_calls": [call]}),)
            if block.get("type") == "text" and block.get("text"):
                return (self._chunk({"content": block["text"]}),)
            return _NONE
        if kind == "message_delta":
            reason = (obj.get("delta") or {}).get("stop_reason")
            if reason:
                self._finish = FINISH.get(reason, "stop")
            usage = obj.get("usage")
            if isinstance(usage, dict):
                self._raw_usage.update({k: v for k, v in usage.items() if v is not None})
            return _NONE
        if kind == "message_stop":
            self._done = True
            self.usage = usage_of(self._raw_usage)
            return (self._chunk({}, self._finish),)
        if kind == "error" or event == b"error":
            raise error_from_event(obj)
        return _NONE

    def finish(self) -> None:
        raise bad_response("the stream ended before message_stop")


class AnthropicAdapter:
    """`{base_url}/v1/messages` with `x-api-key` and `anthropic-version`."""

    kind = "anthropic"

    def headers(self, target: Target) -> dict[str, str]:
        headers = {
            "content-type": "application/json",
            "x-api-key": target.api_key,
            "anthropic-version": target.api_version or DEFAULT_VERSION,
        }
        return headers_for(target, headers)

    def payload(self, target: Target, request: dict[str, Any], stream: bool) -> dict[str, Any]:
        try:
            return build_payload(target, request, stream)
        except TRANSLATION_ERRORS as exc:
            raise request_translation_error(exc) from exc

    async def chat(self, http: httpx.AsyncClient, target: Target, request: dict[str, Any]) -> ChatResult:
        payload = self.payload(target, request, stream=False)
        body = await post_json(http, target, target.base_url + "/v1/messages", payload, self.headers(target))
        try:
            return completion_from(body, target)
        except TRANSLATION_ERRORS as exc:
            raise bad_response(f"unreadable message ({type(exc).__name__})") from exc

    async def open_stream(
        self, http: httpx.AsyncClient, target: Target, request: dict[str, Any]
    ) -> AnthropicChatStream:
        payload = self.payload(target, request, stream=True)
        response = await open_stream(http, target, target.base_url + "/v1/messages", payload, self.headers(target))
        return AnthropicChatStream(response, target, request.get("messages") or ())

    async def embeddings(self, http: httpx.AsyncClient, target: Target, request: dict[str, Any]) -> EmbeddingResult:
        raise unsupported("Anthropic offers no embeddings API; route embeddings to another provider.", "model")
