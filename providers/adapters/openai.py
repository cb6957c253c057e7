"""OpenAI and every OpenAI-compatible server (vLLM, Ollama, LM Studio, proxies...).

The request already is in the upstream's format, so this is the gateway's fast
path: one orjson dump, one POST, one orjson parse; chunks pass through as the
upstream sent them. Streams always ask for `include_usage` so cost accounting
has real numbers; the usage-only chunk is kept back for the gateway to decide.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpx
import orjson

from providers.tokens import estimate_prompt_tokens, estimate_text_tokens

from ._errors import bad_response, error_from_event, headers_for
from ._http import SSEChatStream, open_stream, openai_usage, post_json, version_stamp
from .base import ChatResult, EmbeddingResult, Target, Usage

_NO_CHUNKS: tuple[dict[str, Any], ...] = ()


class OpenAIChatStream(SSEChatStream):
    """Passes OpenAI chunks through, keeping back usage-only and choice-less chunks."""

    def __init__(self, response: httpx.Response, target: Target, messages: Iterable[Any] = ()) -> None:
        super().__init__(response, target, messages)
        self._finished = False

    def translate(self, event: bytes, data: bytes) -> Iterable[dict[str, Any]]:
        if data == b"[DONE]":
            self._done = True
            return _NO_CHUNKS
        obj = orjson.loads(data)
        if not self.upstream_version and obj.get("model"):
            self.upstream_version = obj["model"]
            self.system_fingerprint = obj.get("system_fingerprint") or ""
        choices = obj.get("choices")
        if choices:
            choice = choices[0]
            delta = choice.get("delta")
            if delta:
                content = delta.get("content")
                if content:
                    self._chars += len(content)
            if choice.get("finish_reason"):
                self._finished = True
            usage = obj.get("usage")
            if usage:
                self.usage = openai_usage(usage)
            return (obj,)
        if "error" in obj or event == b"error":
            raise error_from_event(obj)
        usage = obj.get("usage")
        if usage:
            self.usage = openai_usage(usage)
        return _NO_CHUNKS

    def finish(self) -> None:
        if not self._finished:
            raise bad_response("the stream ended before the completion finished")


def completion_result(body: Any, request: dict[str, Any]) -> ChatResult:
    """Check an OpenAI `chat.completion` body and take its usage (or estimate it)."""
    if not isinstance(body, dict) or not isinstance(body.get("choices"), list) or not body["choices"]:
        if isinstance(body, dict) and "error" in body:
            raise error_from_event(body)
        raise bad_response("the completion has no choices")
    usage = openai_usage(body.get("usage"))
    if usage is None:
        choice = body["choices"][0]
        message = choice.get("message") if isinstance(choice, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        usage = Usage(
            prompt_tokens=estimate_prompt_tokens(request.get("messages") or ()),
            completion_tokens=estimate_text_tokens(content),
            estimated=True,
        )
    version_stamp(usage, body.get("model"), body.get("system_fingerprint") or "")
    return ChatResult(body=body, usage=usage)


def embedding_result(body: Any, request: dict[str, Any]) -> EmbeddingResult:
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        if isinstance(body, dict) and "error" in body:
            raise error_from_event(body)
        raise bad_response("the embeddings answer has no data list")
    raw = body.get("usage")
    if isinstance(raw, dict):
        tokens = int(raw.get("prompt_tokens") or raw.get("total_tokens") or 0)
        usage = Usage(prompt_tokens=tokens)
    else:
        usage = Usage(prompt_tokens=estimate_text_tokens(request.get("input")), estimated=True)
    return EmbeddingResult(body=body, usage=usage)


def _without_stream(request: dict[str, Any]) -> dict[str, Any]:
    if "stream" in request or "stream_options" in request:
        return {k: v for k, v in request.items() if k not in ("stream", "stream_options")}
    return request


def _with_stream(request: dict[str, Any]) -> dict[str, Any]:
    options = request.get("stream_options")
    options = {**options, "include_usage": True} if isinstance(options, dict) else {"include_usage": True}
    return {**request, "stream": True, "stream_options": options}


class OpenAIAdapter:
    """`{base_url}/chat/completions` with Bearer auth when a key is set."""

    kind = "openai"

    def chat_url(self, target: Target) -> str:
        return target.base_url + "/chat/completions"

    def embeddings_url(self, target: Target) -> str:
        return target.base_url + "/embeddings"

    def headers(self, target: Target) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        if target.api_key:
            headers["authorization"] = "Bearer " + target.api_key
        return headers_for(target, headers)

    async def chat(self, http: httpx.AsyncClient, target: Target, request: dict[str, Any]) -> ChatResult:
        body = await post_json(http, target, self.chat_url(target), _without_stream(request), self.headers(target))
        return completion_result(body, request)

    async def open_stream(self, http: httpx.AsyncClient, target: Target, request: dict[str, Any]) -> OpenAIChatStream:
        response = await open_stream(http, target, self.chat_url(target), _with_stream(request), self.headers(target))
        return OpenAIChatStream(response, target, request.get("messages") or ())

    async def embeddings(self, http: httpx.AsyncClient, target: Target, request: dict[str, Any]) -> EmbeddingResult:
        body = await post_json(http, target, self.embeddings_url(target), request, self.headers(target))
        return embedding_result(body, request)
