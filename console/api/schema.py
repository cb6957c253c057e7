"""Make the published OpenAPI schema say everything the API answers.

A postprocessing hook of drf-spectacular: every operation lists the errors it can
really return (400 when it reads input, 401, 403, 404, 406, 415 when it reads a body)
with the one error shape of `console.api.exceptions`, and every free-text input says
that it takes no NUL character (the database and Django's fields refuse them).
A fuzzer (tests/api/test_fuzz.py) holds the schema and the API to each other.
"""

from __future__ import annotations

from typing import Any

ERROR_COMPONENT = "Error"
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": (
        '`{"detail": "..."}` for an error of the whole request, or field names mapped to lists of '
        'messages (`{"name": ["This field is required."]}`).'
    ),
    "additionalProperties": True,
}
ERRORS = {
    "400": "The input is not valid (see the messages).",
    "401": "No credentials, or an invalid, revoked or expired admin token.",
    "403": "Your role may not do this, or the organization header names one you do not belong to.",
    "404": "No such object in this organization.",
    "406": "The Accept header asks for a format the API does not serve.",
    "409": "The object's current state does not allow this (e.g. the key is revoked).",
    "415": "The body is not JSON.",
}
NO_NUL = "^[^\\u0000]*$"
# Actions routed as `list` that answer one object (drf-spectacular would publish an array).
SINGLE_OBJECT = {"budget_alert_settings_get"}
METHODS = {"get", "post", "put", "patch", "delete"}
INT64_MAX = 2**63 - 1
INT32_MAX = 2**31 - 1


def _error_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}}},
    }


def _no_nul(schema: Any) -> None:
    """Free-text strings, wherever they sit in a schema, refuse NUL characters."""
    if isinstance(schema, dict):
        if schema.get("type") == "string" and not {"enum", "format", "pattern"} & schema.keys():
            schema["pattern"] = NO_NUL
        elif schema.get("format") == "decimal" and isinstance(schema.get("pattern"), str):
            # drf-spectacular's decimal pattern also matches "" (every digit optional): a number needs one.
            schema["pattern"] = schema["pattern"].replace("^-?\\d{0,", "^-?\\d{1,", 1)
        for key in ("properties",):
            for sub in schema.get(key, {}).values():
                _no_nul(sub)
        for key in ("items", "additionalProperties"):
            _no_nul(schema.get(key))
        for key in ("allOf", "anyOf", "oneOf"):
            for sub in schema.get(key, []):
                _no_nul(sub)


def _bounded_integers(schema: Any) -> None:
    """Request integers without a bound take the 32-bit range the API enforces (console/api/base.py)."""
    if isinstance(schema, dict):
        if schema.get("type") == "integer":
            schema.setdefault("maximum", INT32_MAX)
            schema.setdefault("minimum", -INT32_MAX - 1)
        for sub in schema.get("properties", {}).values():
            _bounded_integers(sub)
        _bounded_integers(schema.get("items"))
        for key in ("allOf", "anyOf", "oneOf"):
            for sub in schema.get(key, []):
                _bounded_integers(sub)


def error_responses(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components[ERROR_COMPONENT] = ERROR_SCHEMA
    for name, schema in components.items():
        _no_nul(schema)
        if name.endswith("Request"):  # COMPONENT_SPLIT_REQUEST: the input side of a serializer
            _bounded_integers(schema)
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in METHODS:
                continue
            responses = operation.setdefault("responses", {})
            if operation.get("operationId") in SINGLE_OBJECT:
                content = responses["200"]["content"]["application/json"]
                content["schema"] = content["schema"].get("items", content["schema"])
            codes = ["401", "403", "404", "406"]
            if operation.get("parameters") or "requestBody" in operation:
                codes.append("400")
            if "requestBody" in operation:
                codes.append("415")
            if method != "get":
                codes.append("409")
            for code in codes:
                responses.setdefault(code, _error_response(ERRORS[code]))
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema") or {}
                _no_nul(schema)
                if schema.get("type") == "integer":
                    schema.setdefault("maximum", INT64_MAX)  # what the database can compare
    return result
