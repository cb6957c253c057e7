"""Stage 2 — validate: the OpenAI request shape, with OpenAI's error wording.

Checks are hand-written rather than schema-driven: they run on every request and
must cost microseconds, and each failure names the offending parameter.
"""

from __future__ import annotations

from typing import Any

import orjson

from routing.errors import GatewayError, invalid

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
RESPONSE_FORMATS = frozenset({"text", "json_object", "json_schema"})
PART_TYPES = frozenset({"text", "image_url", "input_audio", "file", "refusal"})


def parse_json(raw: bytes) -> dict[str, Any]:
    if not raw:
        raise invalid("The request body is empty; send a JSON object.", code="invalid_json")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise invalid(
            f"We could not parse the JSON body of your request ({exc.args[0]}). "
            "The request must be a valid JSON object.",
            code="invalid_json",
        ) from None
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object.", code="invalid_json")
    return body


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _type_error(param: str, expected: str, value: Any) -> GatewayError:
    return invalid(f"Invalid type for '{param}': expected {expected}, but got {_type_name(value)}.", param=param)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def require_model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if model is None:
        raise invalid("you must provide a model parameter", param="model", code="missing_required_parameter")
    if not isinstance(model, str) or not model.strip():
        raise _type_error("model", "a non-empty string", model)
    return model


def _check_number(body: dict, name: str, low: float, high: float) -> None:
    value = body.get(name)
    if value is None:
        return
    if not _is_number(value):
        raise _type_error(name, "a number", value)
    if not low <= value <= high:
        raise invalid(f"Invalid '{name}': {value} is not between {low:g} and {high:g}.", param=name)


def _check_positive_int(body: dict, name: str) -> None:
    value = body.get(name)
    if value is None:
        return
    if not _is_int(value):
        raise _type_error(name, "an integer", value)
    if value < 1:
        raise invalid(f"Invalid '{name}': integer below minimum value. Expected a value >= 1, got {value}.", param=name)


def _check_content(index: int, role: str, message: dict) -> None:
    content = message.get("content")
    param = f"messages[{index}].content"
    if content is None:
        if role == "assistant" and (message.get("tool_calls") or message.get("function_call")):
            return
        if "content" not in message:
            raise invalid(f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")
        raise _type_error(param, "a string or an array of content parts", content)
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise _type_error(param, "a string or an array of content parts", content)
    for part_index, part in enumerate(content):
        part_param = f"{param}[{part_index}]"
        if not isinstance(part, dict):
            raise _type_error(part_param, "an object", part)
        part_type = part.get("type")
        if part_type not in PART_TYPES:
            raise invalid(
                f"Invalid value: '{part_type}'. Supported values are: {', '.join(sorted(PART_TYPES))}.",
                param=f"{part_param}.type",
                code="invalid_value",
            )
        if part_type == "text" and not isinstance(part.get("text"), str):
            raise _type_error(f"{part_param}.text", "a string", part.get("text"))
        if part_type == "image_url":
            image = part.get("image_url")
            if not isinstance(image, dict) or not isinstance(image.get("url"), str):
                raise _type_error(f"{part_param}.image_url", "an object with a 'url' string", image)


def _check_messages(body: dict) -> None:
    messages = body.get("messages")
    if messages is None:
        raise invalid("Missing required parameter: 'messages'.", param="messages", code="missing_required_parameter")
    if not isinstance(messages, list):
        raise _type_error("messages", "an array", messages)
    if not messages:
        raise invalid(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            param="messages",
            code="empty_array",
        )
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _type_error(f"messages[{index}]", "an object", message)
        role = message.get("role")
        if role not in ROLES:
            raise invalid(
                f"Invalid value: '{role}'. Supported values are: 'system', 'developer', 'user', 'assistant', 'tool'.",
                param=f"messages[{index}].role",
                code="invalid_value",
            )
        _check_content(index, role, message)
        if role == "tool" and not isinstance(message.get("tool_call_id"), str):
            raise invalid(
                f"Missing required parameter: 'messages[{index}].tool_call_id'.",
                param=f"messages[{index}].tool_call_id",
                code="missing_required_parameter",
            )


def _check_tools(body: dict) -> None:
    tools = body.get("tools")
    if tools is None:
        return
    if not isinstance(tools, list):
        raise _type_error("tools", "an array", tools)
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict) or tool.get("type") != "function":
            raise invalid(f"Invalid 'tools[{index}]': expected a function tool.", param=f"tools[{index}]")
        function = tool.get("function")
        if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
            raise invalid(
                f"Missing required parameter: 'tools[{index}].function.name'.",
                param=f"tools[{index}].function.name",
                code="missing_required_parameter",
            )
        parameters = function.get("parameters")
        if parameters is not None:
            param = f"tools[{index}].function.parameters"
            if not isinstance(parameters, dict):
                raise _type_error(param, "an object (a JSON Schema)", parameters)
            _check_schema(parameters, param)


def _check_response_format(body: dict) -> None:
    fmt = body.get("response_format")
    if fmt is None:
        return
    if not isinstance(fmt, dict):
        raise _type_error("response_format", "an object", fmt)
    kind = fmt.get("type")
    if kind not in RESPONSE_FORMATS:
        raise invalid(
            f"Invalid value: '{kind}'. Supported values are: 'text', 'json_object', 'json_schema'.",
            param="response_format.type",
            code="invalid_value",
        )
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        if not isinstance(spec, dict):
            raise invalid(
                "Missing required parameter: 'response_format.json_schema'.",
                param="response_format.json_schema",
                code="missing_required_parameter",
            )
        if not isinstance(spec.get("name"), str) or not spec["name"]:
            raise invalid(
                "Missing required parameter: 'response_format.json_schema.name'.",
                param="response_format.json_schema.name",
                code="missing_required_parameter",
            )
        schema = spec.get("schema")
        if schema is not None:
            if not isinstance(schema, dict):
                raise _type_error("response_format.json_schema.schema", "an object (a JSON Schema)", schema)
            _check_schema(schema, "response_format.json_schema.schema")


MAX_CHOICES = 128  # OpenAI's limit on `n`


def _check_schema(schema: dict, param: str) -> None:
    """A JSON Schema that does not follow the metaschema is refused, as OpenAI refuses it."""
    from jsonschema import SchemaError
    from jsonschema.validators import validator_for

    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        raise invalid(f"Invalid schema for '{param}': {exc.message}.", param=param, code="invalid_schema") from None


def _check_logit_bias(body: dict) -> None:
    bias = body.get("logit_bias")
    if bias is None:
        return
    if not isinstance(bias, dict):
        raise _type_error("logit_bias", "an object of token ids to integers", bias)
    if len(bias) > 300:
        raise invalid("Invalid 'logit_bias': at most 300 tokens may be biased.", param="logit_bias")
    for token, value in bias.items():
        if not (isinstance(token, str) and token.isdigit()):
            raise invalid(f"Invalid 'logit_bias': key {token!r} is not a token id (an integer).", param="logit_bias")
        if not _is_int(value) or not -100 <= value <= 100:
            raise invalid(
                f"Invalid 'logit_bias': the bias of token {token} must be an integer between -100 and 100.",
                param="logit_bias",
            )


def _check_common(body: dict) -> None:
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _type_error("stream", "a boolean", stream)
    options = body.get("stream_options")
    if options is not None:
        if not isinstance(options, dict):
            raise _type_error("stream_options", "an object", options)
        if not stream:
            raise invalid(
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.", param="stream_options"
            )
        include_usage = options.get("include_usage")
        if include_usage is not None and not isinstance(include_usage, bool):
            raise _type_error("stream_options.include_usage", "a boolean", include_usage)
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise _type_error("user", "a string", user)
    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise _type_error("metadata", "an object", metadata)
        if len(metadata) > 16:
            raise invalid("Invalid 'metadata': at most 16 keys are allowed.", param="metadata")
        for key, value in metadata.items():
            if not isinstance(value, str) or len(key) > 64 or len(value) > 512:
                raise invalid(
                    "Invalid 'metadata': keys are strings of at most 64 characters and values strings of at most 512.",
                    param=f"metadata.{key}",
                )


def validate_chat(body: dict[str, Any]) -> None:
    _check_messages(body)
    _check_common(body)
    _check_positive_int(body, "max_tokens")
    _check_positive_int(body, "max_completion_tokens")
    _check_positive_int(body, "n")
    choices = body.get("n")
    if choices is not None and choices > MAX_CHOICES:
        raise invalid(
            f"Invalid 'n': integer above maximum value. Expected a value <= {MAX_CHOICES}, got {choices}.", param="n"
        )
    seed = body.get("seed")
    if seed is not None and not _is_int(seed):
        raise _type_error("seed", "an integer", seed)
    _check_logit_bias(body)
    _check_number(body, "temperature", 0, 2)
    _check_number(body, "top_p", 0, 1)
    _check_number(body, "presence_penalty", -2, 2)
    _check_number(body, "frequency_penalty", -2, 2)
    stop = body.get("stop")
    if stop is not None and not isinstance(stop, str):
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise _type_error("stop", "a string or an array of strings", stop)
        if len(stop) > 4:
            raise invalid("Invalid 'stop': at most 4 sequences are allowed.", param="stop")
    _check_tools(body)
    _check_response_format(body)


def validate_embeddings(body: dict[str, Any]) -> None:
    data = body.get("input")
    if data is None:
        raise invalid("Missing required parameter: 'input'.", param="input", code="missing_required_parameter")
    if isinstance(data, str):
        if not data:
            raise invalid("'input' cannot be an empty string.", param="input")
    elif isinstance(data, list):
        if not data:
            raise invalid("'input' cannot be an empty array.", param="input", code="empty_array")
        if len(data) > 2048:
            raise invalid("'input' may hold at most 2048 items.", param="input")
        first = data[0]
        if isinstance(first, str):
            if not all(isinstance(item, str) and item for item in data):
                raise invalid("'input' must be an array of non-empty strings.", param="input")
        elif _is_int(first):
            if not all(_is_int(item) for item in data):
                raise _type_error("input", "an array of token integers", data)
        elif isinstance(first, list):
            if not all(isinstance(item, list) and item and all(_is_int(t) for t in item) for item in data):
                raise _type_error("input", "an array of token arrays", data)
        else:
            raise _type_error("input", "a string or an array of strings", first)
    else:
        raise _type_error("input", "a string or an array of strings", data)
    fmt = body.get("encoding_format")
    if fmt is not None and fmt not in ("float", "base64"):
        raise invalid(
            f"Invalid value: '{fmt}'. Supported values are: 'float' and 'base64'.",
            param="encoding_format",
            code="invalid_value",
        )
    _check_positive_int(body, "dimensions")
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise _type_error("user", "a string", user)
