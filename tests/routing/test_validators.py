"""Cascade validators: each says why an answer fails, or lets it pass."""

from __future__ import annotations

import re

from routing.cascade.compress import conversation_split
from routing.cascade.validators import answer_check
from routing.engine.snapshot import Validators

DEFAULT = Validators(json=True, regex=None, min_length=0, max_length=0, refusal=True, min_confidence=None)


def body(text, **message):
    return {
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text, **message}, "finish_reason": "stop"}]
    }


SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "o",
        "schema": {"type": "object", "properties": {"qty": {"type": "integer"}}, "required": ["qty"]},
    },
}


def test_json_and_schema():
    assert answer_check(DEFAULT, {"response_format": {"type": "json_object"}}, body("{not json")) == "invalid_json"
    assert answer_check(DEFAULT, {"response_format": {"type": "json_object"}}, body("[1]")) == "invalid_json"
    assert answer_check(DEFAULT, {"response_format": {"type": "json_object"}}, body('{"a": 1}')) is None
    assert answer_check(DEFAULT, {"response_format": SCHEMA}, body('{"qty": "three"}')).startswith("schema: qty")
    assert answer_check(DEFAULT, {"response_format": SCHEMA}, body('{"qty": 3}')) is None
    assert answer_check(DEFAULT, {}, body("{not json")) is None  # no response_format: prose is fine


def test_refusal_regex_length_and_confidence():
    assert answer_check(DEFAULT, {}, body("I'm sorry, but I can't help with that.")) == "refusal"
    assert answer_check(DEFAULT, {}, body("", refusal="no")) == "refusal"
    strict = Validators(
        json=True, regex=re.compile(r"^ANSWER:"), min_length=10, max_length=40, refusal=False, min_confidence=0.7
    )
    assert answer_check(strict, {}, body("nope")) == "regex"
    assert answer_check(strict, {}, body("ANSWER:")) == "too_short"
    assert answer_check(strict, {}, body("ANSWER: " + "x" * 50)) == "too_long"
    assert answer_check(strict, {}, body("ANSWER: yes, it is")) == "no_confidence"
    assert answer_check(strict, {}, body("ANSWER: yes (confidence: 55%)")) == "low_confidence: 0.55"
    assert answer_check(strict, {}, body("ANSWER: yes confidence 0.9")) is None


def test_compression_keeps_system_and_last_user_turn_verbatim():
    messages = [
        {"role": "system", "content": "rules"},
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "two"},
        {"role": "user", "content": "three"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "t", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "t", "content": "result"},
    ]
    system, older, kept = conversation_split(messages, keep_turns=0)
    assert system == messages[:1] and older == messages[1:3] and kept == messages[3:]
    _, older, kept = conversation_split(messages, keep_turns=1)
    assert older == messages[1:2] and kept == messages[2:]
