"""Translation helpers shared by the adapters whose providers are not OpenAI-shaped."""

from __future__ import annotations

import os
import time
from typing import Any

import orjson

from .base import UpstreamError, Usage

JSON_OBJECT_INSTRUCTION = "Respond only with a single valid JSON object, with no other text before or after it."


def unsupported(message: str, param: str | None = None) -> UpstreamError:
    """A request feature this provider cannot express (the client's request, not upstream, is at fault)."""
    return UpstreamError(message, status=400, type="invalid_request_error", code="unsupported_parameter", param=param)


def call_id() -> str:
    return "call_" + os.urandom(12).hex()


def completion_id() -> str:
    return "chatcmpl-" + os.urandom(14).hex()


def text_of(content: Any) -> str:
    """The text of an OpenAI message content (string or list of parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text") or "" for part in content if isinstance(part, dict) and part.get("type") in ("text", None)
        )
    return str(content)


def parse_data_url(url: str) -> tuple[str, str] | None:
    """(mime type, base64 data) of a `data:` URL, or None for any other URL."""
    if not url.startswith("data:"):
        return None
    header, _, data = url[5:].partition(",")
    mime, _, encoding = header.partition(";")
    if encoding != "base64" or not data:
        raise unsupported("Only base64 data URLs are supported for inline media.", "messages")
    return mime or "application/octet-stream", data


def image_url_of(part: dict[str, Any]) -> str:
    value = part.get("image_url")
    url = value.get("url") if isinstance(value, dict) else value
    if not isinstance(url, str) or not url:
        raise unsupported("An image_url part needs a url.", "messages")
    return url


def load_arguments(arguments: Any) -> dict[str, Any]:
    """Tool-call arguments as an object (models occasionally emit broken JSON)."""
    if isinstance(arguments, dict):
        return arguments
    if not arguments:
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {"raw_arguments": arguments}
    return value if isinstance(value, dict) else {"value": value}


def max_tokens_of(request: dict[str, Any], default: int) -> int:
    value = request.get("max_completion_tokens") or request.get("max_tokens")
    return int(value) if value else default


def stop_list(request: dict[str, Any]) -> list[str]:
    stop = request.get("stop")
    if isinstance(stop, str):
        return [stop]
    return [s for s in stop or () if isinstance(s, str)]


def json_instruction(request: dict[str, Any]) -> str | None:
    """A system-prompt instruction standing in for JSON mode where a provider has none."""
    fmt = request.get("response_format")
    if not isinstance(fmt, dict):
        return None
    kind = fmt.get("type")
    if kind == "json_object":
        return JSON_OBJECT_INSTRUCTION
    if kind == "json_schema":
        spec = fmt.get("json_schema") or {}
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if schema:
            return (
                "Respond only with a single valid JSON object that conforms to this JSON schema, with no other text "
                "before or after it:\n" + orjson.dumps(schema).decode()
            )
        return JSON_OBJECT_INSTRUCTION
    return None


def function_tools(request: dict[str, Any]) -> list[dict[str, Any]]:
    """The function definitions of an OpenAI `tools` list."""
    out = []
    for tool in request.get("tools") or ():
        if not isinstance(tool, dict):
            continue
        function = tool.get("function")
        if tool.get("type", "function") == "function" and isinstance(function, dict) and function.get("name"):
            out.append(function)
        else:
            raise unsupported("Only function tools can be sent to this provider.", "tools")
    return out


def usage_body(usage: Usage) -> dict[str, Any]:
    """An OpenAI `usage` object."""
    body = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
    }
    if usage.reasoning_tokens:
        body["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
    return body


def completion_body(
    completion_id_: str, model: str, message: dict[str, Any], finish_reason: str, usage: Usage
) -> dict[str, Any]:
    return {
        "id": completion_id_,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
        "usage": usage_body(usage),
    }


class ChunkMaker:
    """Builds `chat.completion.chunk` dicts sharing one id, model and timestamp."""

    __slots__ = ("id", "model", "created")

    def __init__(self, model: str) -> None:
        self.id = completion_id()
        self.model = model
        self.created = int(time.time())

    def __call__(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }


def request_translation_error(exc: BaseException) -> UpstreamError:
    """A request the gateway let through but this provider's format cannot carry."""
    return UpstreamError(
        f"The request cannot be translated for this provider ({type(exc).__name__}: {exc}).",
        status=400,
        type="invalid_request_error",
        code="invalid_request",
    )
