"""Google Gemini (generativelanguage API), translated to and from OpenAI chat.

Roles become user/model, system messages `systemInstruction`, tool calls and
results `functionCall`/`functionResponse` parts (a result is matched to its
call's function name through the call id), JSON mode `responseMimeType` plus a
schema rewritten into Gemini's OpenAPI subset.
"""

from __future__ import annotations

import array
import base64
from collections.abc import Iterable
from typing import Any

import httpx
import orjson

from providers.tokens import estimate_prompt_tokens, estimate_text_tokens

from ._convert import (
    ChunkMaker,
    call_id,
    completion_body,
    completion_id,
    function_tools,
    image_url_of,
    max_tokens_of,
    parse_data_url,
    request_translation_error,
    stop_list,
    text_of,
    unsupported,
)
from ._errors import TRANSLATION_ERRORS, bad_response, error_from_event, headers_for
from ._gemini_schema import has_properties, to_gemini_schema
from ._http import SSEChatStream, open_stream, post_json, version_stamp
from .base import ChatResult, EmbeddingResult, Target, UpstreamError, Usage

FINISH = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
}
_MIME_BY_EXTENSION = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "pdf": "application/pdf",
}
_PASSED_THROUGH = (
    ("n", "candidateCount"),
    ("seed", "seed"),
    ("presence_penalty", "presencePenalty"),
    ("frequency_penalty", "frequencyPenalty"),
)
_NONE: tuple[dict[str, Any], ...] = ()


def _model_path(target: Target) -> str:
    model = target.upstream_model
    return model if model.startswith(("models/", "tunedModels/")) else "models/" + model


def _media_part(url: str) -> dict[str, Any]:
    inline = parse_data_url(url)
    if inline is not None:
        return {"inlineData": {"mimeType": inline[0], "data": inline[1]}}
    extension = url.rsplit("?", 1)[0].rsplit(".", 1)[-1].lower()
    return {"fileData": {"mimeType": _MIME_BY_EXTENSION.get(extension, "image/jpeg"), "fileUri": url}}


def _parts(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            if part.get("text"):
                parts.append({"text": part["text"]})
        elif kind == "image_url":
            parts.append(_media_part(image_url_of(part)))
        elif kind == "input_audio":
            audio = part.get("input_audio") or {}
            parts.append(
                {"inlineData": {"mimeType": "audio/" + (audio.get("format") or "wav"), "data": audio.get("data") or ""}}
            )
        elif kind == "file":
            data = (part.get("file") or {}).get("file_data")
            if not isinstance(data, str):
                raise unsupported("Gemini needs files inline as base64 data URLs (file_data).", "messages")
            parts.append(_media_part(data))
        elif kind != "refusal":
            raise unsupported(f"Gemini models do not accept {kind!r} content parts.", "messages")
    return parts


def _function_response(message: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    text = text_of(message.get("content"))
    try:
        value = orjson.loads(text) if text else {}
    except orjson.JSONDecodeError:
        value = text
    response = value if isinstance(value, dict) else {"result": value}
    name = names.get(message.get("tool_call_id") or "") or message.get("name") or "function"
    return {"functionResponse": {"name": name, "response": response}}


def _generation_config(request: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if request.get("temperature") is not None:
        config["temperature"] = request["temperature"]
    if request.get("top_p") is not None:
        config["topP"] = request["top_p"]
    if request.get("max_completion_tokens") or request.get("max_tokens"):
        config["maxOutputTokens"] = max_tokens_of(request, 0)
    stops = stop_list(request)
    if stops:
        config["stopSequences"] = stops[:5]
    for source, name in _PASSED_THROUGH:
        if request.get(source) is not None:
            config[name] = request[source]
    fmt = request.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
        spec = fmt.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if isinstance(schema, dict):
            config["responseSchema"] = to_gemini_schema(schema)
    return config


def _tool_config(request: dict[str, Any]) -> dict[str, Any] | None:
    choice = request.get("tool_choice")
    if choice is None:
        return None
    if choice == "auto":
        return {"functionCallingConfig": {"mode": "AUTO"}}
    if choice == "none":
        return {"functionCallingConfig": {"mode": "NONE"}}
    if choice == "required":
        return {"functionCallingConfig": {"mode": "ANY"}}
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [choice["function"].get("name")]}}
    raise unsupported(f"Unsupported tool_choice {choice!r}.", "tool_choice")


def build_payload(request: dict[str, Any]) -> dict[str, Any]:
    """A generateContent request for an OpenAI chat completion request."""
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool call id -> function name

    def add(role: str, parts: list[dict[str, Any]]) -> None:
        if not parts:
            return
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})

    for message in request.get("messages") or ():
        role = message.get("role")
        if role in ("system", "developer"):
            text = text_of(message.get("content"))
            if text:
                system.append({"text": text})
        elif role == "user":
            add("user", _parts(message.get("content")))
        elif role == "assistant":
            parts = _parts(message.get("content"))
            for call in message.get("tool_calls") or ():
                function = call.get("function") or {}
                names[call.get("id") or ""] = function.get("name") or ""
                arguments = function.get("arguments")
                try:
                    args = orjson.loads(arguments) if arguments else {}
                except orjson.JSONDecodeError:
                    args = {"raw_arguments": arguments}
                parts.append(
                    {
                        "functionCall": {
                            "name": function.get("name") or "",
                            "args": args if isinstance(args, dict) else {"value": args},
                        }
                    }
                )
            add("model", parts)
        elif role in ("tool", "function"):
            add("user", [_function_response(message, names)])
        else:
            raise unsupported(f"Unsupported message role {role!r}.", "messages")
    payload: dict[str, Any] = {"contents": contents}
    if system:
        payload["systemInstruction"] = {"parts": system}
    config = _generation_config(request)
    if config:
        payload["generationConfig"] = config
    functions = function_tools(request)
    if functions:
        declarations = []
        for function in functions:
            declaration = {"name": function["name"], "description": function.get("description") or ""}
            parameters = function.get("parameters")
            if has_properties(parameters):
                declaration["parameters"] = to_gemini_schema(parameters)
            declarations.append(declaration)
        payload["tools"] = [{"functionDeclarations": declarations}]
        tool_config = _tool_config(request)
        if tool_config is not None:
            payload["toolConfig"] = tool_config
    return payload


def usage_of(raw: Any) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    return Usage(
        prompt_tokens=int(raw.get("promptTokenCount") or 0),
        completion_tokens=int(raw.get("candidatesTokenCount") or 0) + int(raw.get("thoughtsTokenCount") or 0),
        cached_tokens=int(raw.get("cachedContentTokenCount") or 0),
        reasoning_tokens=int(raw.get("thoughtsTokenCount") or 0),
    )


def blocked(body: dict[str, Any]) -> UpstreamError:
    reason = (body.get("promptFeedback") or {}).get("blockReason") or "unspecified"
    return UpstreamError(
        f"The provider's safety filters blocked the prompt ({reason}).",
        status=400,
        type="invalid_request_error",
        code="content_policy_violation",
    )


def _call(part: dict[str, Any]) -> dict[str, Any]:
    call = part["functionCall"]
    arguments = orjson.dumps(call.get("args") or {}).decode()
    return {
        "id": call.get("id") or call_id(),
        "type": "function",
        "function": {"name": call["name"], "arguments": arguments},
    }


def completion_from(body: Any, target: Target, request: dict[str, Any]) -> ChatResult:
    if not isinstance(body, dict):
        raise bad_response("the answer is not an object")
    candidates = body.get("candidates")
    if not candidates:
        if "error" in body:
            raise error_from_event(body)
        if (body.get("promptFeedback") or {}).get("blockReason"):
            raise blocked(body)
        raise bad_response("the answer has no candidates")
    candidate = candidates[0]
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in (candidate.get("content") or {}).get("parts") or ():
        if part.get("thought"):
            continue
        if "text" in part:
            texts.append(part["text"])
        elif "functionCall" in part:
            calls.append(_call(part))
    finish = FINISH.get(candidate.get("finishReason") or "STOP", "stop")
    if calls and finish == "stop":
        finish = "tool_calls"
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        message["tool_calls"] = calls
    usage = usage_of(body.get("usageMetadata"))
    if usage is None:
        usage = Usage(
            prompt_tokens=estimate_prompt_tokens(request.get("messages") or ()),
            completion_tokens=estimate_text_tokens(message["content"]),
            estimated=True,
        )
    model = body.get("modelVersion") or target.upstream_model
    version_stamp(usage, body.get("modelVersion"))
    return ChatResult(body=completion_body(completion_id(), model, message, finish, usage), usage=usage)


class GeminiChatStream(SSEChatStream):
    """streamGenerateContent SSE responses -> OpenAI chunks (the stream ends at EOF)."""

    def __init__(self, response: httpx.Response, target: Target, messages: Iterable[Any] = ()) -> None:
        super().__init__(response, target, messages)
        self._chunk = ChunkMaker(target.upstream_model)
        self._started = False
        self._finish: str | None = None
        self._calls = 0
        self._raw_usage: Any = None

    def translate(self, event: bytes, data: bytes) -> Iterable[dict[str, Any]]:
        obj = orjson.loads(data)
        if "error" in obj:
            raise error_from_event(obj)
        candidates = obj.get("candidates")
        if not candidates and (obj.get("promptFeedback") or {}).get("blockReason"):
            raise blocked(obj)
        if obj.get("usageMetadata"):
            self._raw_usage = obj["usageMetadata"]
        out: list[dict[str, Any]] = []
        if not self._started:
            self._started = True
            if obj.get("modelVersion"):
                self._chunk.model = obj["modelVersion"]
                self.upstream_version = obj["modelVersion"]
            out.append(self._chunk({"role": "assistant", "content": ""}))
        if not candidates:
            return out
        candidate = candidates[0]
        for part in (candidate.get("content") or {}).get("parts") or ():
            if part.get("thought"):
                continue
            if "text" in part:
                self._chars += len(part["text"])
                out.append(self._chunk({"content": part["text"]}))
            elif "functionCall" in part:
                call = {"index": self._calls, **_call(part)}
                self._calls += 1
                self._chars += len(call["function"]["arguments"])
                out.append(self._chunk({"tool_calls": [call]}))
        reason = candidate.get("finishReason")
        if reason and self._finish is None:
            finish = FINISH.get(reason, "stop")
            self._finish = "tool_calls" if self._calls and finish == "stop" else finish
            out.append(self._chunk({}, self._finish))
        return out

    def finish(self) -> None:
        if self._finish is None:
            raise bad_response("the stream ended without a finish reason")
        self.usage = usage_of(self._raw_usage)


def _embedding_texts(request: dict[str, Any]) -> list[str]:
    raw = request.get("input")
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not items or not all(isinstance(t, str) and t for t in items):
        raise unsupported("Gemini embeddings take a string or a list of non-empty strings (no token arrays).", "input")
    return items


class GeminiAdapter:
    """`{base_url}/models/{model}:generateContent` and friends, `x-goog-api-key` auth."""

    kind = "gemini"

    def headers(self, target: Target) -> dict[str, str]:
        return headers_for(target, {"content-type": "application/json", "x-goog-api-key": target.api_key})

    def payload(self, request: dict[str, Any]) -> dict[str, Any]:
        try:
            return build_payload(request)
        except TRANSLATION_ERRORS as exc:
            raise request_translation_error(exc) from exc

    async def chat(self, http: httpx.AsyncClient, target: Target, request: dict[str, Any]) -> ChatResult:
        url = f"{target.base_url}/{_model_path(target)}:generateContent"
        body = await post_json(http, target, url, self.payload(request), self.headers(target))
        try:
            return completion_from(body, target, request)
        except TRANSLATION_ERRORS as exc:
            raise bad_response(f"unreadable answer ({type(exc).__name__})") from exc

    async def open_stream(self, http: httpx.AsyncClient, target: Target, request: dict[str, Any]) -> GeminiChatStream:
        url = f"{target.base_url}/{_model_path(target)}:streamGenerateContent?alt=sse"
        response = await open_stream(http, target, url, self.payload(request), self.headers(target))
        return GeminiChatStream(response, target, request.get("messages") or ())

    async def embeddings(self, http: httpx.AsyncClient, target: Target, request: dict[str, Any]) -> EmbeddingResult:
        texts = _embedding_texts(request)
        model = _model_path(target)
        dims = request.get("dimensions")
        requests = []
        for text in texts:
            item: dict[str, Any] = {"model": model, "content": {"parts": [{"text": text}]}}
            if dims:
                item["outputDimensionality"] = dims
            requests.append(item)
        url = f"{target.base_url}/{model}:batchEmbedContents"
        body = await post_json(http, target, url, {"requests": requests}, self.headers(target))
        embeddings = body.get("embeddings") if isinstance(body, dict) else None
        if not isinstance(embeddings, list) or len(embeddings) != len(texts):
            raise bad_response("the embeddings answer does not match the inputs")
        as_base64 = request.get("encoding_format") == "base64"
        data = []
        try:
            for index, item in enumerate(embeddings):
                values = item["values"]
                if as_base64:
                    values = base64.b64encode(array.array("f", values).tobytes()).decode()
                data.append({"object": "embedding", "index": index, "embedding": values})
        except TRANSLATION_ERRORS as exc:
            raise bad_response(f"unreadable embedding ({type(exc).__name__})") from exc
        tokens = estimate_text_tokens(texts)
        usage = Usage(prompt_tokens=tokens, estimated=True)
        out = {
            "object": "list",
            "data": data,
            "model": target.upstream_model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return EmbeddingResult(body=out, usage=usage)
