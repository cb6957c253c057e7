"""Gemini request validation and error bodies (Google's `google.rpc.Status` shape).

Field names are accepted in camelCase or snake_case as proto JSON allows; an
unknown field is refused the way Google's front end does, which catches
OpenAI-isms leaking into a translated request.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from providers.tokens import IMAGE_TOKENS, MESSAGE_OVERHEAD, count_tokens, estimate_text_tokens

from .asgi import SSE
from .common import Dialect, Reject
from .compose import CACHE_MIN_TOKENS, ToolSpec, Turn

REQUEST_FIELDS = frozenset(
    {
        "contents",
        "systemInstruction",
        "generationConfig",
        "tools",
        "toolConfig",
        "safetySettings",
        "cachedContent",
        "labels",
    }
)
CONFIG_FIELDS = frozenset(
    {
        "stopSequences", "responseMimeType", "responseSchema", "responseJsonSchema", "candidateCount",
        "maxOutputTokens", "temperature", "topP", "topK", "seed", "presencePenalty", "frequencyPenalty",
        "responseLogprobs", "logprobs", "thinkingConfig", "responseModalities", "speechConfig", "mediaResolution",
        "enableEnhancedCivicAnswers", "imageConfig",
    }
)  # fmt: skip
PART_FIELDS = frozenset(
    {
        "text", "inlineData", "fileData", "functionCall", "functionResponse", "executableCode",
        "codeExecutionResult", "thought", "thoughtSignature", "videoMetadata", "partMetadata", "mediaResolution",
    }
)  # fmt: skip
PART_DATA = (
    "text",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
)
SCHEMA_FIELDS = frozenset(
    {
        "type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems", "properties",
        "required", "minProperties", "maxProperties", "minLength", "maxLength", "pattern", "example", "anyOf",
        "propertyOrdering", "default", "items", "minimum", "maximum",
    }
)  # fmt: skip
SCHEMA_TYPES = frozenset({"TYPE_UNSPECIFIED", "STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT", "NULL"})
FUNCTION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}$")
_SNAKE = re.compile(r"_([a-z])")
GOOGLE_502 = (
    b"<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <title>Error 502 (Server Error)!!1</title>\n"
    b"  <p><b>502.</b> <ins>That\xe2\x80\x99s an error.</ins>\n  <p>The server encountered a temporary error and "
    b"could not complete your request.<p>Please try again in 30 seconds.  <ins>That\xe2\x80\x99s all we know.</ins>\n"
)


def camel(key: str) -> str:
    return _SNAKE.sub(lambda m: m.group(1).upper(), key) if "_" in key else key


def status_body(code: int, status: str, message: str, details: list | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return {"error": error}


def invalid(message: str) -> Reject:
    return Reject(400, status_body(400, "INVALID_ARGUMENT", message))


def unknown_field(name: str, where: str | None = None) -> Reject:
    at = f" at '{where}'" if where else ""
    return invalid(f'Invalid JSON payload received. Unknown name "{name}"{at}: Cannot find field.')


class GeminiDialect(Dialect):
    name = "gemini"
    malformed_body = b'{"candidates": [{"content": {"parts": [{"text": "unterminated'
    malformed_frame = b'data: {"candidates": [{"content": {"parts": [{"text": "unterm\r\n\r\n'

    def invalid(self, message: str, param: str | None = None, code: str | None = None) -> Reject:
        return invalid(message)

    def context_length(self, model: str, tokens: int, window: int) -> Reject:
        return invalid(f"The input token count ({tokens}) exceeds the maximum number of tokens allowed ({window}).")

    def fault(self, fault: str, model: str, stream: bool = False) -> Reject:
        if fault == "400":
            return invalid("* GenerateContentRequest.contents: the simulator was told to refuse this request\n")
        if fault == "401":
            details = [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                }
            ]
            return Reject(
                400, status_body(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", details)
            )
        if fault == "403":
            return Reject(403, status_body(403, "PERMISSION_DENIED", "The caller does not have permission"))
        if fault == "404":
            message = (
                f"models/{model} is not found for API version v1beta, or is not supported for generateContent. "
                "Call ListModels to see the list of available models and their supported methods."
            )
            return Reject(404, status_body(404, "NOT_FOUND", message))
        if fault == "429":
            message = (
                "You exceeded your current quota, please check your plan and billing details. For more information "
                "on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits."
            )
            details = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1s"}]
            return Reject(429, status_body(429, "RESOURCE_EXHAUSTED", message, details), ((b"retry-after", b"1"),))
        if fault == "502":
            return Reject(502, GOOGLE_502, content_type=b"text/html; charset=UTF-8")
        if fault in ("503", "529"):
            return Reject(503, status_body(503, "UNAVAILABLE", "The model is overloaded. Please try again later."))
        if fault == "content_filter":
            ratings = [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}]
            body = {"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": ratings}, "modelVersion": model}
            if stream:
                return Reject(200, b"data: " + orjson.dumps(body) + b"\r\n\r\n", content_type=SSE)
            return Reject(200, body)
        return Reject(500, self.server_error())

    @staticmethod
    def server_error() -> dict[str, Any]:
        message = "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"
        return status_body(500, "INTERNAL", message)

    def midstream_frame(self) -> bytes:
        return b"data: " + orjson.dumps(self.server_error()) + b"\r\n\r\n"


GEMINI = GeminiDialect()


def normalize(obj: dict[str, Any], allowed: frozenset[str], where: str | None) -> dict[str, Any]:
    """camelCase keys, refusing any the API does not know."""
    out = {}
    for key, value in obj.items():
        name = camel(key)
        if name not in allowed:
            raise unknown_field(key, where)
        out[name] = value
    return out


def check_schema(schema: Any, where: str) -> None:
    if not isinstance(schema, dict):
        raise invalid(f"Invalid value at '{where}': expected an object")
    for key, value in schema.items():
        name = camel(key)
        if name not in SCHEMA_FIELDS:
            raise unknown_field(key, where)
        if name == "type" and (not isinstance(value, str) or value.upper() not in SCHEMA_TYPES):
            raise invalid(
                f"Invalid value at '{where}.type' "
                f'(type.googleapis.com/google.ai.generativelanguage.v1beta.Type), "{value}"'
            )
        if name == "properties":
            for prop, sub in (value or {}).items():
                check_schema(sub, f"{where}.properties[{prop}].value")
        elif name == "items":
            check_schema(value, f"{where}.items")
        elif name == "anyOf":
            for i, sub in enumerate(value or ()):
                check_schema(sub, f"{where}.any_of[{i}]")


def _part_tokens(part: dict[str, Any]) -> int:
    if "text" in part:
        return count_tokens(part["text"] or "")
    if "inlineData" in part or "fileData" in part:
        return IMAGE_TOKENS
    return estimate_text_tokens(part.get("functionCall") or part.get("functionResponse") or part)


def check_contents(contents: Any) -> list[dict[str, Any]]:
    if contents is None or contents == []:
        raise invalid("* GenerateContentRequest.contents: contents is not specified\n")
    if not isinstance(contents, list):
        raise invalid(
            "Invalid value at 'contents' (type.googleapis.com/google.ai.generativelanguage.v1beta.Content), "
            "expected a list"
        )
    out = []
    previous_calls = 0
    for i, content in enumerate(contents):
        if not isinstance(content, dict):
            raise invalid(f"Invalid value at 'contents[{i}]': expected an object")
        content = normalize(content, frozenset({"role", "parts"}), f"contents[{i}]")
        role = content.get("role") or "user"
        if role not in ("user", "model"):
            raise invalid("Please use a valid role: user, model.")
        parts = content.get("parts")
        if not parts:
            raise invalid(f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty.\n")
        if not isinstance(parts, list):
            raise invalid(f"Invalid value at 'contents[{i}].parts': expected a list")
        normalized = []
        for j, part in enumerate(parts):
            if not isinstance(part, dict):
                raise invalid(f"Invalid value at 'contents[{i}].parts[{j}]': expected an object")
            part = normalize(part, PART_FIELDS, f"contents[{i}].parts[{j}]")
            if sum(1 for key in PART_DATA if key in part) != 1:
                raise invalid(
                    f"* GenerateContentRequest.contents[{i}].parts[{j}].data: required oneof field 'data' "
                    "must have one initialized field\n"
                )
            call = part.get("functionCall") or part.get("functionResponse")
            if call is not None and (not isinstance(call, dict) or not call.get("name")):
                raise invalid(
                    f"* GenerateContentRequest.contents[{i}].parts[{j}].function_call.name: Name cannot be empty.\n"
                )
            if "inlineData" in part:
                blob = part["inlineData"]
                if (
                    not isinstance(blob, dict)
                    or not (blob.get("mimeType") or blob.get("mime_type"))
                    or not blob.get("data")
                ):
                    raise invalid(
                        f"* GenerateContentRequest.contents[{i}].parts[{j}].inline_data: "
                        "mime_type and data are required\n"
                    )
            normalized.append(part)
        responses = sum(1 for p in normalized if "functionResponse" in p)
        if previous_calls and responses != previous_calls:
            raise invalid(
                "Please ensure that the number of function response parts is equal to the number of function call "
                "parts of the function call turn."
            )
        if responses and not previous_calls:
            raise invalid("Please ensure that function response turn comes immediately after a function call turn.")
        previous_calls = sum(1 for p in normalized if "functionCall" in p)
        out.append({"role": role, "parts": normalized})
    return out


def _pick_tool(tools: Any, tool_config: Any) -> ToolSpec | None:
    if not tools:
        return None
    if not isinstance(tools, list):
        raise invalid("Invalid value at 'tools': expected a list")
    specs: list[ToolSpec] = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise invalid(f"Invalid value at 'tools[{i}]': expected an object")
        for key, value in tool.items():
            name = camel(key)
            if name not in (
                "functionDeclarations",
                "googleSearch",
                "codeExecution",
                "urlContext",
                "googleSearchRetrieval",
            ):
                raise unknown_field(key, f"tools[{i}]")
            if name != "functionDeclarations":
                continue
            for j, decl in enumerate(value or ()):
                decl = normalize(
                    decl,
                    frozenset({"name", "description", "parameters", "parametersJsonSchema", "behavior", "response"}),
                    f"tools[{i}].function_declarations[{j}]",
                )
                fname = decl.get("name")
                if not isinstance(fname, str) or not FUNCTION_NAME.match(fname):
                    raise invalid(
                        f"* GenerateContentRequest.tools[{i}].function_declarations[{j}].name: Invalid function "
                        "name. Must start with a letter or an underscore. Must be alphameric (a-z, A-Z, 0-9), "
                        "underscores (_), dots (.) or dashes (-), with a maximum length of 64.\n"
                    )
                if "parameters" in decl:
                    check_schema(decl["parameters"], f"tools[{i}].function_declarations[{j}].parameters")
                specs.append(ToolSpec(fname, decl.get("parameters") or decl.get("parametersJsonSchema") or {}))
    config = {}
    if isinstance(tool_config, dict):
        raw = tool_config.get("functionCallingConfig") or tool_config.get("function_calling_config") or {}
        config = {camel(k): v for k, v in raw.items()} if isinstance(raw, dict) else {}
    mode = str(config.get("mode") or "AUTO").upper()
    if mode == "NONE" or not specs:
        return None
    allowed = config.get("allowedFunctionNames") or []
    for spec in specs:
        if not allowed or spec.name in allowed:
            return spec
    return specs[0]


def _system_tokens(system: Any) -> int:
    if isinstance(system, dict):
        parts = system.get("parts") or []
        return sum(
            _part_tokens(normalize(p, PART_FIELDS, "system_instruction.parts")) for p in parts if isinstance(p, dict)
        )
    if isinstance(system, str):
        return count_tokens(system)
    return 0


def parse_generate(data: dict[str, Any], model: str) -> Turn:
    """Validate a generateContent request and describe the turn to answer."""
    data = normalize(data, REQUEST_FIELDS, None)
    contents = check_contents(data.get("contents"))
    config = data.get("generationConfig") or {}
    if not isinstance(config, dict):
        raise invalid("Invalid value at 'generation_config': expected an object")
    config = normalize(config, CONFIG_FIELDS, "generation_config")
    max_tokens = config.get("maxOutputTokens")
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1):
        raise invalid(f"Invalid value at 'generation_config.max_output_tokens' (TYPE_INT32), {max_tokens!r}")
    temperature = config.get("temperature")
    if temperature is not None and (not isinstance(temperature, int | float) or not 0 <= temperature <= 2):
        raise invalid("* GenerateContentRequest.generation_config.temperature: temperature must be between 0 and 2\n")
    if "responseSchema" in config:
        check_schema(config["responseSchema"], "generation_config.response_schema")
    mime = config.get("responseMimeType")
    json_mode = mime == "application/json"
    schema = config.get("responseSchema") or config.get("responseJsonSchema") if json_mode else None
    stops = config.get("stopSequences") or ()
    tool = _pick_tool(data.get("tools"), data.get("toolConfig"))
    last = contents[-1]
    after_tool = any("functionResponse" in p for p in last["parts"])
    if after_tool:
        user_text = " ".join(
            orjson.dumps(p["functionResponse"].get("response")).decode()
            for p in last["parts"]
            if "functionResponse" in p
        )
    else:
        user_text = next(
            (" ".join(p.get("text") or "" for p in c["parts"]) for c in reversed(contents) if c["role"] == "user"), ""
        )
    per_content = [MESSAGE_OVERHEAD + sum(_part_tokens(p) for p in c["parts"]) for c in contents]
    prompt_tokens = _system_tokens(data.get("systemInstruction")) + sum(per_content)
    turn = Turn(
        model=model,
        last_user_text=user_text,
        prompt_tokens=prompt_tokens,
        max_tokens=max_tokens,
        stop=tuple(s for s in stops if isinstance(s, str)),
        json_mode=json_mode,
        json_schema=schema if isinstance(schema, dict) else None,
        tool=tool,
        after_tool_result=after_tool,
        reasoning_effort=_thinking_effort(config.get("thinkingConfig")),
    )
    if prompt_tokens >= CACHE_MIN_TOKENS and len(contents) > 1:
        turn.cache_prefix = orjson.dumps([data.get("systemInstruction"), contents[:-1]])
        turn.cache_prefix_tokens = prompt_tokens - per_content[-1]
    return turn


def _thinking_effort(thinking: Any) -> str:
    """A thinking budget of 0 turns thinking off; any other setting thinks as usual."""
    if isinstance(thinking, dict) and thinking.get("thinkingBudget", thinking.get("thinking_budget")) == 0:
        return "none"
    return ""
