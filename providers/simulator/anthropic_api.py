"""Anthropic Messages API: POST /anthropic/v1/messages, plain and SSE.

Validation mirrors api.anthropic.com: required headers, `max_tokens`, roles
limited to user/assistant, known content block types, and every `tool_result`
answering a `tool_use` of the message right before it.
"""

from __future__ import annotations

from typing import Any

import orjson

from providers.simulator.anthropic_cache import _cache_prefix
from providers.tokens import IMAGE_TOKENS, MESSAGE_OVERHEAD, count_tokens, estimate_text_tokens

from .asgi import Request
from .common import Dialect, Frames, Reject, Sim, respond
from .compose import CACHE_MIN_TOKENS, Answer, ToolSpec, Turn, argument_pieces, new_id

KNOWN_FIELDS = frozenset(
    {
        "model", "messages", "max_tokens", "system", "stop_sequences", "stream", "temperature", "top_p", "top_k",
        "tools", "tool_choice", "metadata", "thinking", "service_tier", "container", "mcp_servers",
        "context_management",
    }
)  # fmt: skip
BLOCK_TYPES = (
    "document", "image", "redacted_thinking", "search_result", "server_tool_use", "text", "thinking",
    "tool_result", "tool_use", "web_search_tool_result",
)  # fmt: skip
STOP_REASONS = {"stop": "end_turn", "stop_sequence": "stop_sequence", "length": "max_tokens", "tool": "tool_use"}
IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")


def error_body(type_: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": type_, "message": message}, "request_id": new_id("req_", 12)}


class AnthropicDialect(Dialect):
    name = "anthropic"
    malformed_body = b'{"id": "msg_broken", "type": "message", "content": [{"type": "text", "text": "unterm'
    malformed_frame = b'event: message_start\ndata: {"type": "message_start", "message": {"id": \n\n'

    def invalid(self, message: str, param: str | None = None, code: str | None = None) -> Reject:
        return Reject(400, error_body("invalid_request_error", message))

    def context_length(self, model: str, tokens: int, window: int) -> Reject:
        return self.invalid(f"prompt is too long: {tokens} tokens > {window} maximum")

    def fault(self, fault: str, model: str, stream: bool = False) -> Reject:
        if fault == "400":
            return self.invalid("messages: the simulator was told to refuse this request")
        if fault == "401":
            return Reject(401, error_body("authentication_error", "invalid x-api-key"))
        if fault == "403":
            return Reject(
                403,
                error_body("permission_error", "Your API key does not have permission to use the specified resource."),
            )
        if fault == "404":
            return Reject(404, error_body("not_found_error", f"model: {model}"))
        if fault == "429":
            message = (
                "Number of request tokens has exceeded your per-minute rate limit "
                "(https://docs.anthropic.com/en/api/rate-limits); see the response headers for current usage. "
                "Please reduce the prompt length or the maximum tokens requested, or try again later."
            )
            return Reject(429, error_body("rate_limit_error", message), ((b"retry-after", b"1"),))
        if fault in ("503", "529"):
            return Reject(529 if fault == "529" else 503, error_body("overloaded_error", "Overloaded"))
        if fault == "content_filter":
            return self.invalid("Output blocked by content filtering policy")
        return Reject(500 if fault == "500" else 502, error_body("api_error", "Internal server error"))

    def midstream_frame(self) -> bytes:
        return b"event: error\ndata: " + orjson.dumps(error_body("overloaded_error", "Overloaded")) + b"\n\n"


ANTHROPIC = AnthropicDialect()


def _invalid(message: str) -> Reject:
    return ANTHROPIC.invalid(message)


def check_auth(req: Request) -> None:
    if not req.headers.get(b"x-api-key"):
        raise Reject(401, error_body("authentication_error", "x-api-key header is required"))
    version = req.header(b"anthropic-version")
    if not version:
        raise _invalid("anthropic-version: header is required")
    if len(version) != 10 or version[4] != "-" or version[7] != "-":
        raise _invalid(f"anthropic-version: invalid version {version!r}")


def _block_tokens(block: Any) -> int:
    if isinstance(block, str):
        return count_tokens(block)
    if not isinstance(block, dict):
        return 0
    kind = block.get("type")
    if kind in ("image", "document"):
        return IMAGE_TOKENS
    if kind == "text":
        return count_tokens(block.get("text") or "")
    if kind == "tool_use":
        return count_tokens(block.get("name") or "") + estimate_text_tokens(block.get("input"))
    if kind == "tool_result":
        content = block.get("content")
        return sum(_block_tokens(b) for b in content) if isinstance(content, list) else estimate_text_tokens(content)
    return estimate_text_tokens(block)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, dict):
                if block.get("type") == "text":
                    parts.append(block.get("text") or "")
                elif block.get("type") == "tool_result":
                    parts.append(_text_of(block.get("content")))
        return " ".join(parts)
    return ""


def _check_block(i: int, j: int, block: Any, previous_tool_ids: set[str]) -> None:
    where = f"messages.{i}.content.{j}"
    if not isinstance(block, dict):
        raise _invalid(f"{where}: Input should be a valid dictionary or object to extract fields from")
    kind = block.get("type")
    if kind not in BLOCK_TYPES:
        expected = ", ".join(f"'{t}'" for t in BLOCK_TYPES)
        raise _invalid(
            f"{where}.type: Input tag '{kind}' found using 'type' does not match any of the expected tags: {expected}"
        )
    if kind == "text":
        if not isinstance(block.get("text"), str):
            raise _invalid(f"{where}.text: Field required")
        if not block["text"]:
            raise _invalid("messages: text content blocks must be non-empty")
    elif kind == "image":
        source = block.get("source")
        if not isinstance(source, dict):
            raise _invalid(f"{where}.image.source: Field required")
        if source.get("type") == "base64":
            if source.get("media_type") not in IMAGE_TYPES:
                raise _invalid(
                    f"{where}.image.source.base64.media_type: Input should be "
                    "'image/jpeg', 'image/png', 'image/gif' or 'image/webp'"
                )
            if not source.get("data"):
                raise _invalid(f"{where}.image.source.base64.data: Field required")
        elif source.get("type") == "url":
            if not source.get("url"):
                raise _invalid(f"{where}.image.source.url.url: Field required")
        else:
            raise _invalid(
                f"{where}.image.source: Input tag '{source.get('type')}' found using 'type' does not match "
                "any of the expected tags: 'base64', 'file', 'url'"
            )
    elif kind == "tool_use":
        if not block.get("id") or not block.get("name") or not isinstance(block.get("input"), dict):
            raise _invalid(f"{where}.tool_use: id, name and input (an object) are required")
    elif kind == "tool_result":
        tool_use_id = block.get("tool_use_id")
        if tool_use_id not in previous_tool_ids:
            raise _invalid(
                f"{where}: unexpected `tool_use_id` found in `tool_result` blocks: {tool_use_id}. Each `tool_result` "
                "block must have a corresponding `tool_use` block in the previous message."
            )


def _check_messages(messages: Any) -> None:
    if messages is None:
        raise _invalid("messages: Field required")
    if not isinstance(messages, list):
        raise _invalid("messages: Input should be a valid list")
    if not messages:
        raise _invalid("messages: at least one message is required")
    pending_tool_ids: set[str] = set()
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _invalid(f"messages.{i}: Input should be a valid dictionary")
        role = message.get("role")
        if role == "system":
            raise _invalid(
                'messages: Unexpected role "system". The Messages API accepts a top-level `system` parameter, '
                'not "system" as an input message role.'
            )
        if role not in ("user", "assistant"):
            raise _invalid(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        content = message.get("content")
        if content is None:
            raise _invalid(f"messages.{i}.content: Field required")
        final_assistant = role == "assistant" and i == len(messages) - 1
        if (content == "" or content == []) and not final_assistant:
            raise _invalid(
                f"messages.{i}: all messages must have non-empty content except for the optional final "
                "assistant message"
            )
        blocks = content if isinstance(content, list) else []
        if not isinstance(content, str | list):
            raise _invalid(f"messages.{i}.content: Input should be a valid list")
        for j, block in enumerate(blocks):
            _check_block(i, j, block, pending_tool_ids if role == "user" else set())
        answered = {b.get("tool_use_id") for b in blocks if isinstance(b, dict) and b.get("type") == "tool_result"}
        missing = pending_tool_ids - answered
        if missing:
            raise _invalid(
                f"messages.{i - 1}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                f"{', '.join(sorted(missing))}. Each `tool_use` block must have a corresponding `tool_result` "
                "block in the next message."
            )
        pending_tool_ids = {b["id"] for b in blocks if isinstance(b, dict) and b.get("type") == "tool_use"}


def _pick_tool(data: dict[str, Any]) -> tuple[ToolSpec | None, bool]:
    """The tool to call and whether the model is forced to call one."""
    tools = data.get("tools")
    choice = data.get("tool_choice")
    if not tools:
        return None, False
    if not isinstance(tools, list):
        raise _invalid("tools: Input should be a valid list")
    specs = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise _invalid(f"tools.{i}.name: Field required")
        if tool.get("type") in (None, "custom") and not isinstance(tool.get("input_schema"), dict):
            raise _invalid(f"tools.{i}.custom.input_schema: Field required")
        specs.append(ToolSpec(tool["name"], tool.get("input_schema") or {}))
    kind = choice.get("type") if isinstance(choice, dict) else "auto"
    if choice is not None and kind not in ("auto", "any", "tool", "none"):
        raise _invalid(
            f"tool_choice.type: Input tag '{kind}' found using 'type' does not match any of the expected tags: "
            "'auto', 'any', 'tool', 'none'"
        )
    if kind == "none":
        return None, False
    if kind == "tool":
        name = choice.get("name")
        for spec in specs:
            if spec.name == name:
                return spec, True
        raise _invalid(f"tool_choice: Tool '{name}' not found in tools")
    return specs[0], kind == "any"


def _json_wanted(system: str) -> tuple[bool, dict[str, Any] | None]:
    """Whether the system prompt asks for JSON only, and the JSON schema it quotes, if any.

    Anthropic has no JSON switch; a real model follows such an instruction, so the
    simulated one does too (this is how gateways express JSON mode to Claude).
    """
    if "JSON" not in system or "only" not in system.lower():
        return False, None
    start = system.find("{")
    for _ in range(5):
        if start < 0:
            break
        try:
            value = orjson.loads(system[start:])
        except orjson.JSONDecodeError:
            start = system.find("{", start + 1)
            continue
        return True, value if isinstance(value, dict) else None
    return True, None


def parse_request(data: dict[str, Any], cache_marked: bool) -> tuple[Turn, bool, bool, int]:
    """Validate a Messages request; returns the turn, stream and forced-tool flags, and how many
    of the cacheable prefix's tokens go to a 1-hour cache."""
    for key in data:
        if key not in KNOWN_FIELDS:
            raise _invalid(f"{key}: Extra inputs are not permitted")
    model = data.get("model")
    if not model:
        raise _invalid("model: Field required")
    if not isinstance(model, str):
        raise _invalid("model: Input should be a valid string")
    max_tokens = data.get("max_tokens")
    if max_tokens is None:
        raise _invalid("max_tokens: Field required")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        raise _invalid("max_tokens: Input should be a valid integer")
    if max_tokens < 1:
        raise _invalid("max_tokens: Input should be greater than or equal to 1")
    messages = data.get("messages")
    _check_messages(messages)
    for name, high in (("temperature", 1.0), ("top_p", 1.0)):
        value = data.get(name)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise _invalid(f"{name}: Input should be a valid number")
            if not 0.0 <= value <= high:
                raise _invalid(f"{name}: Input should be less than or equal to {high:g}")
    stream = data.get("stream", False)
    if not isinstance(stream, bool):
        raise _invalid("stream: Input should be a valid boolean")
    system = data.get("system")
    if system is not None and not isinstance(system, str | list):
        raise _invalid("system: Input should be a valid string")
    stops = data.get("stop_sequences") or ()
    if not isinstance(stops, list | tuple) or not all(isinstance(s, str) for s in stops):
        raise _invalid("stop_sequences: Input should be a valid list")
    tool, forced = _pick_tool(data)
    last = messages[-1]
    last_content = last.get("content")
    after_tool = (
        last.get("role") == "user"
        and isinstance(last_content, list)
        and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in last_content)
    )
    user_text = next((_text_of(m["content"]) for m in reversed(messages) if m["role"] == "user"), "")
    system_tokens = count_tokens(system) if isinstance(system, str) else sum(_block_tokens(b) for b in system or ())
    per_message = [
        MESSAGE_OVERHEAD
        + (count_tokens(m["content"]) if isinstance(m["content"], str) else sum(_block_tokens(b) for b in m["content"]))
        for m in messages
    ]
    prompt_tokens = (
        system_tokens + sum(per_message) + sum(count_tokens(orjson.dumps(t).decode()) for t in data.get("tools") or ())
    )
    json_mode, schema = _json_wanted(_text_of(system) if isinstance(system, list) else system or "")
    turn = Turn(
        model=model,
        last_user_text=user_text,
        prompt_tokens=prompt_tokens,
        max_tokens=max_tokens,
        stop=tuple(stops),
        json_mode=json_mode,
        json_schema=schema,
        tool=tool,
        after_tool_result=after_tool,
    )
    one_hour = 0
    if cache_marked:
        key, prefix_tokens, one_hour = _cache_prefix(data, messages, per_message)
        if key is not None and prefix_tokens >= CACHE_MIN_TOKENS:
            turn.cache_prefix = key
            turn.cache_prefix_tokens = prefix_tokens
    return turn, stream, forced, one_hour


def _usage(answer: Answer, turn: Turn, one_hour: int = 0) -> dict[str, Any]:
    """Usage as Anthropic reports it: a first sight of a marked prefix writes the cache
    (split by lifetime in `cache_creation`), a repeat reads it."""
    created = 0
    if turn.cache_prefix is not None and not answer.cached_tokens and turn.cache_prefix_tokens >= CACHE_MIN_TOKENS:
        created = turn.cache_prefix_tokens
    created_1h = min(one_hour, created)
    return {
        "input_tokens": answer.prompt_tokens - answer.cached_tokens - created,
        "cache_creation_input_tokens": created,
        "cache_read_input_tokens": answer.cached_tokens,
        "cache_creation": {"ephemeral_5m_input_tokens": created - created_1h, "ephemeral_1h_input_tokens": created_1h},
        "output_tokens": answer.completion_tokens,
        "service_tier": "standard",
    }


def _content(answer: Answer, forced: bool, tool_id: str) -> list[dict[str, Any]]:
    if answer.tool_name is None:
        return [{"type": "text", "text": answer.text or ""}]
    blocks: list[dict[str, Any]] = []
    if not forced:
        blocks.append({"type": "text", "text": f"I'll use the {answer.tool_name} tool."})
    blocks.append(
        {"type": "tool_use", "id": tool_id, "name": answer.tool_name, "input": orjson.loads(answer.tool_arguments)}
    )
    return blocks


def render_message(answer: Answer, turn: Turn, forced: bool, one_hour: int = 0) -> bytes:
    body = {
        "id": new_id("msg_", 12),
        "type": "message",
        "role": "assistant",
        "model": answer.version or turn.model,
        "content": _content(answer, forced, new_id("toolu_", 12)),
        "stop_reason": STOP_REASONS[answer.finish],
        "stop_sequence": answer.stop_sequence,
        "usage": _usage(answer, turn, one_hour),
    }
    return orjson.dumps(body)


def _event(name: bytes, payload: Any) -> bytes:
    return b"event: " + name + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def render_events(answer: Answer, turn: Turn, forced: bool, one_hour: int = 0) -> Frames:
    usage = _usage(answer, turn, one_hour)
    start_usage = {**usage, "output_tokens": 1}
    message = {
        "id": new_id("msg_", 12),
        "type": "message",
        "role": "assistant",
        "model": answer.version or turn.model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": start_usage,
    }
    frames: Frames = [(_event(b"message_start", {"type": "message_start", "message": message}), 0)]
    index = 0
    text_pieces = (
        answer.pieces if answer.tool_name is None else ([] if forced else [f"I'll use the {answer.tool_name} tool."])
    )
    if text_pieces:
        frames.append(
            (
                _event(
                    b"content_block_start",
                    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                ),
                0,
            )
        )
        frames.append((b'event: ping\ndata: {"type": "ping"}\n\n', 0))
        for piece in text_pieces:
            delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}
            frames.append((_event(b"content_block_delta", delta), count_tokens(piece)))
        frames.append((_event(b"content_block_stop", {"type": "content_block_stop", "index": 0}), 0))
        index = 1
    if answer.tool_name is not None:
        block = {"type": "tool_use", "id": new_id("toolu_", 12), "name": answer.tool_name, "input": {}}
        frames.append(
            (_event(b"content_block_start", {"type": "content_block_start", "index": index, "content_block": block}), 0)
        )
        for piece in argument_pieces(answer.tool_arguments):
            delta = {
                "type": "content_block_delta",
                "index": index,
                "delta": {"type": "input_json_delta", "partial_json": piece},
            }
            frames.append((_event(b"content_block_delta", delta), max(1, len(piece) // 3)))
        frames.append((_event(b"content_block_stop", {"type": "content_block_stop", "index": index}), 0))
    delta = {
        "type": "message_delta",
        "delta": {"stop_reason": STOP_REASONS[answer.finish], "stop_sequence": answer.stop_sequence},
        "usage": {"output_tokens": answer.completion_tokens},
    }
    frames.append((_event(b"message_delta", delta), 0))
    frames.append((b'event: message_stop\ndata: {"type":"message_stop"}\n\n', 0))
    return frames


async def messages(req: Request, sim: Sim) -> None:
    """POST /anthropic/v1/messages."""
    check_auth(req)
    body = await req.read_body()
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise _invalid("There was an error parsing the body of your request as JSON.") from None
    if not isinstance(data, dict):
        raise _invalid("Input should be a valid dictionary or object to extract fields from")
    turn, stream, forced, one_hour = parse_request(data, b'"cache_control"' in body)
    await respond(
        req,
        sim,
        ANTHROPIC,
        turn,
        stream=stream,
        render=lambda answer: render_message(answer, turn, forced, one_hour),
        render_stream=lambda answer: render_events(answer, turn, forced, one_hour),
        headers=((b"request-id", new_id("req_", 12).encode()),),
    )
