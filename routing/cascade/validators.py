"""Does a layer's answer pass? JSON / JSON Schema of the request's response_format,
a regular expression, length bounds, refusal detection and a self-reported
confidence threshold. Each check returns a short reason when the answer fails."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from routing.engine.snapshot import Validators

REFUSAL = re.compile(
    r"^\W*(?:i'?m\s+sorry,?\s+but\s+i\s+(?:can(?:no|')t|am\s+unable|won'?t)|i\s+(?:can(?:no|')t|am\s+unable\s+to|won'?t)"
    r"\s+(?:help|assist|provide|comply|do\s+that|answer)|as\s+an\s+ai\b.{0,40}\b(?:can(?:no|')t|unable))",
    re.IGNORECASE,
)
CONFIDENCE_TEXT = re.compile(r"confidence\W{0,4}(\d{1,3}(?:\.\d+)?)\s*(%)?", re.IGNORECASE)


@functools.lru_cache(maxsize=256)
def _schema_validator(schema_json: bytes) -> Draft202012Validator | None:
    schema = orjson.loads(schema_json)
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError:
        return None
    return Draft202012Validator(schema)


def _answer(result_body: Mapping[str, Any]) -> tuple[str, Mapping[str, Any], Mapping[str, Any]]:
    choices = result_body.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], Mapping) else {}
    message = choice.get("message") or {}
    content = message.get("content")
    return (content if isinstance(content, str) else ""), message, choice


def _confidence(text: str, parsed: Any) -> float | None:
    value: Any = None
    if isinstance(parsed, Mapping):
        value = parsed.get("confidence")
    if isinstance(value, bool) or not isinstance(value, int | float):
        match = CONFIDENCE_TEXT.search(text)
        if match is None:
            return None
        value = float(match.group(1))
        if match.group(2):
            return value / 100.0
    value = float(value)
    return value / 100.0 if value > 1.0 else value


def answer_check(validators: Validators, request: Mapping[str, Any], result_body: Mapping[str, Any]) -> str | None:
    """None when the answer passes, else why it does not (the reason is recorded)."""
    text, message, choice = _answer(result_body)
    if message.get("tool_calls") and not text:
        return None  # a tool call is the model acting; nothing to validate as prose
    if validators.refusal and (
        message.get("refusal") or choice.get("finish_reason") == "content_filter" or REFUSAL.search(text[:300])
    ):
        return "refusal"
    parsed: Any = None
    fmt = request.get("response_format")
    kind = fmt.get("type") if isinstance(fmt, Mapping) else None
    if kind in ("json_object", "json_schema") or validators.min_confidence is not None:
        try:
            parsed = orjson.loads(text)
        except orjson.JSONDecodeError:
            parsed = None
            if validators.json and kind in ("json_object", "json_schema"):
                return "invalid_json"
    if validators.json and kind == "json_object" and not isinstance(parsed, dict):
        return "invalid_json"
    if validators.json and kind == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema")
        if isinstance(schema, Mapping):
            validator = _schema_validator(orjson.dumps(schema, option=orjson.OPT_SORT_KEYS))
            if validator is not None:
                error = next(iter(validator.iter_errors(parsed)), None)
                if error is not None:
                    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
                    return f"schema: {where}: {error.message[:120]}"
    if validators.regex is not None and validators.regex.search(text) is None:
        return "regex"
    if validators.min_length and len(text) < validators.min_length:
        return "too_short"
    if validators.max_length and len(text) > validators.max_length:
        return "too_long"
    if validators.min_confidence is not None:
        confidence = _confidence(text, parsed)
        if confidence is None:
            return "no_confidence"
        if confidence < validators.min_confidence:
            return f"low_confidence: {confidence:g}"
    return None
