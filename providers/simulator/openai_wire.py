"""OpenAI (and Azure OpenAI) request validation and error bodies.

Messages and codes follow what api.openai.com answers, so an adapter or gateway
bug surfaces here the way it would against the real service.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from providers.tokens import estimate_prompt_tokens

from .common import Dialect, Reject
from .compose import CACHE_MIN_TOKENS, ToolSpec, Turn

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
PART_TYPES = ("text", "image_url", "input_audio", "refusal", "audio", "file")
KNOWN_PARAMS = frozenset(
    {
        "model", "messages", "frequency_penalty", "logit_bias", "logprobs", "top_logprobs", "max_tokens",
        "max_completion_tokens", "n", "presence_penalty", "response_format", "seed", "service_tier", "stop",
        "stream", "stream_options", "temperature", "top_p", "tools", "tool_choice", "parallel_tool_calls",
        "user", "function_call", "functions", "metadata", "store", "reasoning_effort", "modalities", "audio",
        "prediction", "web_search_options", "verbosity", "prompt_cache_key", "safety_identifier",
        "prompt_cache_retention",
    }
)  # fmt: skip
_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    list: "an array",
    dict: "an object",
}
RATE_LIMIT_HEADERS = (
    (b"retry-after", b"1"),
    (b"x-ratelimit-limit-requests", b"500"),
    (b"x-ratelimit-remaining-requests", b"0"),
    (b"x-ratelimit-reset-requests", b"1s"),
)
CLOUDFLARE_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1>"
    b"</center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n"
)


def error_body(
    message: str, type_: str | None = "invalid_request_error", param: str | None = None, code: str | None = None
) -> dict:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


class OpenAIDialect(Dialect):
    name = "openai"

    def invalid(self, message: str, param: str | None = None, code: str | None = None) -> Reject:
        return Reject(400, error_body(message, param=param, code=code))

    def context_length(self, model: str, tokens: int, window: int) -> Reject:
        message = (
            f"This model's maximum context length is {window} tokens. However, your messages resulted in "
            f"{tokens} tokens. Please reduce the length of the messages."
        )
        return Reject(400, error_body(message, param="messages", code="context_length_exceeded"))

    def fault(self, fault: str, model: str, stream: bool = False) -> Reject:
        if fault == "400":
            return self.invalid(
                "Invalid value for 'messages': the simulator was told to refuse this request.",
                "messages",
                "invalid_value",
            )
        if fault == "401":
            message = "Incorrect API key provided: sk-sim***. You can find your API key at https://platform.openai.com/account/api-keys."
            return Reject(401, error_body(message, code="invalid_api_key"))
        if fault == "403":
            return Reject(
                403, error_body(f"Project `proj_sim` does not have access to model `{model}`", code="model_not_found")
            )
        if fault == "404":
            return Reject(
                404,
                error_body(
                    f"The model `{model}` does not exist or you do not have access to it.", code="model_not_found"
                ),
            )
        if fault == "429":
            message = (
                f"Rate limit reached for {model} in organization org-sim on requests per min (RPM): Limit 500, "
                "Used 500, Requested 1. Please try again in 1s. "
                "Visit https://platform.openai.com/account/rate-limits to learn more."
            )
            return Reject(429, error_body(message, "requests", code="rate_limit_exceeded"), RATE_LIMIT_HEADERS)
        if fault == "502":
            return Reject(502, CLOUDFLARE_502, content_type=b"text/html")
        if fault in ("503", "529"):
            return Reject(503, error_body("The server is overloaded or not ready yet.", "server_error"))
        if fault == "content_filter":
            message = (
                "Your request was rejected as a result of our safety system. Your prompt may contain text "
                "that is not allowed by our safety system."
            )
            return Reject(400, error_body(message, code="content_policy_violation"))
        return Reject(500, self.server_error())

    @staticmethod
    def server_error() -> dict:
        message = (
            "The server had an error while processing your request. Sorry about that! You can retry your request, "
            "or contact us through our help center at help.openai.com if the error persists."
        )
        return error_body(message, "server_error")

    def midstream_frame(self) -> bytes:
        return b"data: " + orjson.dumps(self.server_error()) + b"\n\n"


AZURE_FILTER_RESULT = {
    "hate": {"filtered": False, "severity": "safe"},
    "self_harm": {"filtered": False, "severity": "safe"},
    "sexual": {"filtered": False, "severity": "safe"},
    "violence": {"filtered": False, "severity": "safe"},
}


def azure_error(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}


class AzureDialect(OpenAIDialect):
    name = "azure"

    def fault(self, fault: str, model: str, stream: bool = False) -> Reject:
        if fault == "401":
            message = (
                "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid "
                "key for an active subscription and use a correct regional API endpoint for your resource."
            )
            return Reject(401, azure_error("401", message))
        if fault == "404":
            message = (
                "The API deployment for this resource does not exist. If you created the deployment within the "
                "last 5 minutes, please wait a moment and try again."
            )
            return Reject(404, azure_error("DeploymentNotFound", message))
        if fault == "429":
            message = (
                "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have "
                "exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 1 second. "
                "Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the "
                "default rate limit."
            )
            return Reject(429, azure_error("429", message), ((b"retry-after", b"1"), (b"retry-after-ms", b"1000")))
        if fault == "500":
            return Reject(
                500, azure_error("InternalServerError", "The service encountered an internal error. Please retry.")
            )
        if fault == "502":
            return Reject(502, azure_error("BadGateway", "Bad gateway."))
        if fault in ("503", "529"):
            message = "The service is temporarily unable to process your request. Please try again later."
            return Reject(503, azure_error("ServiceUnavailable", message))
        if fault == "content_filter":
            message = (
                "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. "
                "Please modify your prompt and retry. To learn more about our content filtering policies please read "
                "our documentation: https://go.microsoft.com/fwlink/?linkid=2198766"
            )
            result = {**AZURE_FILTER_RESULT, "violence": {"filtered": True, "severity": "medium"}}
            body = {
                "error": {
                    "message": message,
                    "type": None,
                    "param": "prompt",
                    "code": "content_filter",
                    "status": 400,
                    "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": result},
                }
            }
            return Reject(400, body)
        return super().fault(fault, model, stream)


def _type_error(name: str, value: Any, expected: str) -> Reject:
    got = _TYPE_NAMES.get(type(value), "null" if value is None else "a value")
    return Reject(
        400,
        error_body(
            f"Invalid type for '{name}': expected {expected}, but got {got} instead.", param=name, code="invalid_type"
        ),
    )


def parse_json(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        message = (
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP "
            "library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you "
            "have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)"
        )
        raise Reject(400, error_body(message)) from None
    if not isinstance(data, dict):
        raise _type_error("body", data, "an object")
    return data


def _number(data: dict, name: str, low: float, high: float) -> None:
    value = data.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _type_error(name, value, "a decimal")
    if value < low:
        raise Reject(
            400,
            error_body(
                f"Invalid '{name}': decimal below minimum value. Expected a value >= {low:g}, but got {value} instead.",
                param=name,
                code="decimal_below_min_value",
            ),
        )
    if value > high:
        raise Reject(
            400,
            error_body(
                f"Invalid '{name}': decimal above maximum value. "
                f"Expected a value <= {high:g}, but got {value} instead.",
                param=name,
                code="decimal_above_max_value",
            ),
        )


def _positive_int(data: dict, name: str) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _type_error(name, value, "an integer")
    if value < 1:
        raise Reject(
            400,
            error_body(
                f"Invalid '{name}': integer below minimum value. Expected a value >= 1, but got {value} instead.",
                param=name,
                code="integer_below_min_value",
            ),
        )
    return value


def content_text(content: Any) -> str:
    """The text of a message's content, whether a string or a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def _check_messages(messages: Any) -> None:
    if messages is None:
        raise Reject(
            400,
            error_body("Missing required parameter: 'messages'.", param="messages", code="missing_required_parameter"),
        )
    if not isinstance(messages, list):
        raise _type_error("messages", messages, "an array")
    if not messages:
        raise Reject(
            400,
            error_body(
                "Invalid 'messages': empty array. Expected an array with minimum length 1, "
                "but got an empty array instead.",
                param="messages",
                code="empty_array",
            ),
        )
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _type_error(f"messages[{i}]", message, "an object")
        role = message.get("role")
        if role is None:
            raise Reject(
                400,
                error_body(
                    f"Missing required parameter: 'messages[{i}].role'.",
                    param=f"messages[{i}].role",
                    code="missing_required_parameter",
                ),
            )
        if role not in ROLES:
            supported = "'system', 'assistant', 'user', 'function', 'tool', and 'developer'"
            raise Reject(
                400,
                error_body(
                    f"Invalid value: '{role}'. Supported values are: {supported}.",
                    param=f"messages[{i}].role",
                    code="invalid_value",
                ),
            )
        content = message.get("content")
        if content is None and role in ("system", "developer", "user", "tool"):
            raise Reject(
                400,
                error_body(
                    f"Missing required parameter: 'messages[{i}].content'.",
                    param=f"messages[{i}].content",
                    code="missing_required_parameter",
                ),
            )
        if role == "tool" and not message.get("tool_call_id"):
            raise Reject(
                400,
                error_body(
                    "Missing parameter 'tool_call_id': messages with role 'tool' must have a 'tool_call_id'.",
                    param=f"messages[{i}].tool_call_id",
                    code="missing_required_parameter",
                ),
            )
        if isinstance(content, list):
            for j, part in enumerate(content):
                kind = part.get("type") if isinstance(part, dict) else None
                if kind not in PART_TYPES:
                    supported = "'text', 'image_url', 'input_audio', 'refusal', 'audio', and 'file'"
                    raise Reject(
                        400,
                        error_body(
                            f"Invalid value: '{kind}'. Supported values are: {supported}.",
                            param=f"messages[{i}].content[{j}].type",
                            code="invalid_value",
                        ),
                    )
        elif content is not None and not isinstance(content, str):
            raise _type_error(f"messages[{i}].content", content, "one of a string or array of objects")


def _pick_tool(data: dict) -> ToolSpec | None:
    tools = data.get("tools")
    choice = data.get("tool_choice")
    if tools is None:
        if choice is not None:
            raise Reject(
                400,
                error_body(
                    "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
                    param="tool_choice",
                ),
            )
        return None
    if not isinstance(tools, list):
        raise _type_error("tools", tools, "an array")
    specs = []
    for i, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise Reject(
                400,
                error_body(
                    f"Missing required parameter: 'tools[{i}].function.name'.",
                    param=f"tools[{i}].function.name",
                    code="missing_required_parameter",
                ),
            )
        specs.append(ToolSpec(function["name"], function.get("parameters") or {}))
    if not specs or choice == "none":
        return None
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        for spec in specs:
            if spec.name == name:
                return spec
        raise Reject(
            400,
            error_body(
                f"Invalid value for 'tool_choice': no function named '{name}' was specified in the 'tools' parameter.",
                param="tool_choice",
            ),
        )
    return specs[0]


@dataclass(slots=True)
class ChatOptions:
    stream: bool
    include_usage: bool
    n: int


def parse_chat(data: dict[str, Any], model: str | None = None) -> tuple[Turn, ChatOptions]:
    """Validate a chat completion request and describe the turn to answer."""
    for key in data:
        if key not in KNOWN_PARAMS:
            raise Reject(400, error_body(f"Unrecognized request argument supplied: {key}"))
    model = model or data.get("model")
    if not model:
        raise Reject(400, error_body("you must provide a model parameter"))
    if not isinstance(model, str):
        raise _type_error("model", model, "a string")
    messages = data.get("messages")
    _check_messages(messages)
    _number(data, "temperature", 0, 2)
    _number(data, "top_p", 0, 1)
    _number(data, "presence_penalty", -2, 2)
    _number(data, "frequency_penalty", -2, 2)
    max_tokens = _positive_int(data, "max_completion_tokens") or _positive_int(data, "max_tokens")
    n = _positive_int(data, "n") or 1
    stream = data.get("stream", False)
    if stream is not None and not isinstance(stream, bool):
        raise _type_error("stream", stream, "a boolean")
    options = data.get("stream_options")
    if options is not None and not stream:
        raise Reject(
            400,
            error_body(
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.", param="stream_options"
            ),
        )
    stop = data.get("stop")
    stops = (stop,) if isinstance(stop, str) else tuple(s for s in stop or () if isinstance(s, str))
    fmt = data.get("response_format")
    json_mode, schema = False, None
    if fmt is not None:
        kind = fmt.get("type") if isinstance(fmt, dict) else None
        if kind not in ("text", "json_object", "json_schema"):
            raise Reject(
                400,
                error_body(
                    f"Invalid value: '{kind}'. Supported values are: 'json_object', 'json_schema', and 'text'.",
                    param="response_format.type",
                    code="invalid_value",
                ),
            )
        if kind == "json_schema":
            spec = fmt.get("json_schema")
            if not isinstance(spec, dict) or not spec.get("name"):
                raise Reject(
                    400,
                    error_body(
                        "Missing required parameter: 'response_format.json_schema.name'.",
                        param="response_format.json_schema.name",
                        code="missing_required_parameter",
                    ),
                )
            json_mode, schema = True, spec.get("schema") or {"type": "object", "properties": {}}
        elif kind == "json_object":
            if not any("json" in content_text(m.get("content")).lower() for m in messages):
                raise Reject(
                    400,
                    error_body(
                        "'messages' must contain the word 'json' in some form, to use 'response_format' "
                        "of type 'json_object'.",
                        param="messages",
                    ),
                )
            json_mode = True
    last = messages[-1]
    after_tool = last.get("role") in ("tool", "function")
    user_text = content_text(last.get("content")) if after_tool else ""
    if not after_tool:
        user_text = next((content_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
    prompt_tokens = estimate_prompt_tokens(messages)
    turn = Turn(
        model=model,
        last_user_text=user_text,
        prompt_tokens=prompt_tokens,
        max_tokens=max_tokens,
        stop=stops,
        json_mode=json_mode,
        json_schema=schema,
        tool=_pick_tool(data),
        after_tool_result=after_tool,
        reasoning_effort=str(data.get("reasoning_effort") or ""),
    )
    if prompt_tokens >= CACHE_MIN_TOKENS and len(messages) > 1:
        turn.cache_prefix = orjson.dumps(messages[:-1])
        turn.cache_prefix_tokens = estimate_prompt_tokens(messages[:-1])
    include_usage = bool(stream and isinstance(options, dict) and options.get("include_usage"))
    return turn, ChatOptions(stream=bool(stream), include_usage=include_usage, n=n)
