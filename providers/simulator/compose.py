"""Provider-neutral answers: text, JSON, tool calls, embeddings, prompt caching.

Each provider module parses its wire format into a `Turn`, asks `compose` for
an `Answer` and renders that back in its own format, so every provider's
simulated model behaves alike for the same conversation.
"""

from __future__ import annotations

import array
import functools
import hashlib
import math
import os
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import orjson

from providers.tokens import count_tokens

from .knobs import Knobs
from .skills import skill_answer

_FILLER_TEXT = (
    "the simulated model considers each part of the question carefully and answers with a short "
    "deterministic reply so that tests and benchmarks see stable lengths while the words still look "
    "like ordinary prose written for a reader who wants a clear summary of options tradeoffs and next "
    "steps in plain terms"
)
_FILLER = tuple(_FILLER_TEXT.split(" "))

CACHE_MIN_TOKENS = 1024  # below this, providers do not cache prompt prefixes
CACHE_STEP = 128


@dataclass(slots=True)
class ToolSpec:
    name: str
    parameters: dict[str, Any]


@dataclass(slots=True)
class Turn:
    """What the simulated model needs to know about one request."""

    model: str
    last_user_text: str
    prompt_tokens: int
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    json_mode: bool = False
    json_schema: dict[str, Any] | None = None
    tool: ToolSpec | None = None
    after_tool_result: bool = False
    cache_prefix: bytes | None = None  # the prompt minus its last message, for cache hits
    cache_prefix_tokens: int = 0
    reasoning_effort: str = ""  # OpenAI `reasoning_effort`; "none" for a Gemini thinking budget of 0


@dataclass(slots=True)
class Answer:
    text: str | None = None
    tool_name: str | None = None
    tool_arguments: str = ""  # JSON text
    finish: str = "stop"  # stop | length | tool | stop_sequence
    stop_sequence: str | None = None
    completion_tokens: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0  # thinking tokens, counted inside completion_tokens as OpenAI reports them
    pieces: list[str] = field(default_factory=list)  # the text as streamed, one piece per chunk
    version: str = ""  # the model version the provider reports (see `versions`)
    fingerprint: str = ""


def new_id(prefix: str, size: int = 12) -> str:
    return prefix + os.urandom(size).hex()


def _snippet(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _natural_tokens(seed_text: str) -> int:
    """A stable natural answer length (24..64 tokens) for a given question."""
    return 24 + (hashlib.blake2b(seed_text.encode(), digest_size=2).digest()[0] % 41)


def _prose(turn: Turn, knobs: Knobs) -> str:
    lead = "Simulated answer to: " + _snippet(turn.last_user_text or "an empty question")
    if turn.after_tool_result:
        lead = "Simulated answer using the tool result: " + _snippet(turn.last_user_text, 60)
    target = knobs.output_tokens or _natural_tokens(turn.last_user_text)
    limit = target * 3
    if len(lead) >= limit:
        return lead
    words = [lead if lead.endswith((".", "?", "!")) else lead + "."]
    length = len(words[0])
    i = 0
    while length < limit:
        word = _FILLER[i % len(_FILLER)]
        if i == 0:
            word = word.capitalize()
        words.append(word)
        length += len(word) + 1
        i += 1
    text = " ".join(words)
    if len(text) > limit:
        cut = text.rfind(" ", 0, limit)
        text = text[: cut if cut > len(words[0]) else limit]
    return text.rstrip(" .") + "."


def sample_for_schema(schema: Any, root: dict[str, Any] | None = None, name: str = "value", depth: int = 0) -> Any:
    """A value that satisfies the schema's types, enums and required properties."""
    if not isinstance(schema, dict) or depth > 8:
        return "simulated"
    root = root if root is not None else schema
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for key in ref[2:].split("/"):
            target = target.get(key, {}) if isinstance(target, dict) else {}
        return sample_for_schema(target, root, name, depth + 1)
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            usable = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
            return sample_for_schema((usable or options)[0], root, name, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    kind = str(kind).lower() if kind is not None else ("object" if "properties" in schema else "string")
    if kind == "object":
        properties = schema.get("properties") or {}
        required = schema.get("required")
        keys = required if isinstance(required, list) else list(properties)
        return {
            key: sample_for_schema(properties.get(key, {}), root, key, depth + 1)
            for key in keys
            if isinstance(key, str)
        }
    if kind == "array":
        count = max(1, int(schema.get("minItems") or 1))
        return [sample_for_schema(schema.get("items", {}), root, name, depth + 1) for _ in range(min(count, 3))]
    if kind == "integer":
        return int(schema.get("minimum") or 1)
    if kind == "number":
        return float(schema.get("minimum") or 0.5)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    fmt = schema.get("format")
    if fmt == "date-time":
        return "2025-01-01T00:00:00Z"
    if fmt == "date":
        return "2025-01-01"
    if fmt == "email":
        return "user@example.com"
    if fmt in ("uri", "url"):
        return "https://example.com"
    return f"sample {name}"


def _json_text(turn: Turn, knobs: Knobs) -> str:
    if turn.json_schema is not None:
        value = sample_for_schema(turn.json_schema)
    else:
        value = {"answer": _prose(turn, knobs), "source": "simulator"}
    text = orjson.dumps(value).decode()
    if knobs.json_breaks_now():
        return 'Sure! Here is the JSON you asked for: {"answer": ' + text[: max(1, len(text) // 2)]
    return text


def _split_pieces(text: str) -> list[str]:
    """Stream pieces: one word each, keeping the separating space in front."""
    words = text.split(" ")
    return [words[0], *(" " + w for w in words[1:])] if words else []


def _apply_limits(answer: Answer, text: str, turn: Turn) -> None:
    for stop in turn.stop:
        if stop and stop in text:
            text = text[: text.index(stop)]
            answer.finish = "stop_sequence"
            answer.stop_sequence = stop
    if turn.max_tokens is not None and count_tokens(text) > turn.max_tokens:
        text = text[: turn.max_tokens * 3]
        answer.finish = "length"
        answer.stop_sequence = None
    answer.text = text
    answer.completion_tokens = count_tokens(text)


# Models that think before they answer; the effort scales how much (OpenAI's names).
_REASONING_MODELS = re.compile(r"(^|[/-])o\d\b|gpt-5|gpt-oss|gemini-(2\.5|3)|deepseek-r|grok-[34]|reason|think")
_EFFORT = {"none": 0, "minimal": 0, "low": 1, "medium": 2, "high": 4, "xhigh": 6}


def reasoning_tokens(turn: Turn, knobs: Knobs, answered_tokens: int) -> int:
    """Thinking tokens for a reasoning-capable model (0 for others, or when the answer
    length is forced or already at max_tokens, which the thinking shares)."""
    if knobs.output_tokens is not None or "-chat" in turn.model or not _REASONING_MODELS.search(turn.model.lower()):
        return 0
    factor = _EFFORT.get(turn.reasoning_effort or "medium", 2)
    tokens = (16 + hashlib.blake2b(b"r:" + turn.last_user_text.encode(), digest_size=1).digest()[0] % 32) * factor
    if turn.max_tokens is not None:
        tokens = min(tokens, max(0, turn.max_tokens - answered_tokens))
    return tokens


def compose(turn: Turn, knobs: Knobs, cache: PromptCache) -> Answer:
    """The simulated model's reply to one turn (thinking included for reasoning models)."""
    answer = _compose(turn, knobs, cache)
    answer.reasoning_tokens = reasoning_tokens(turn, knobs, answer.completion_tokens)
    answer.completion_tokens += answer.reasoning_tokens
    return answer


def _compose(turn: Turn, knobs: Knobs, cache: PromptCache) -> Answer:
    answer = Answer(prompt_tokens=turn.prompt_tokens)
    answer.cached_tokens = cache.hit(turn.cache_prefix, turn.cache_prefix_tokens)
    if turn.tool is not None and not turn.after_tool_result:
        arguments = sample_for_schema(turn.tool.parameters or {"type": "object", "properties": {}})
        if not isinstance(arguments, dict):
            arguments = {}
        answer.tool_name = turn.tool.name
        answer.tool_arguments = orjson.dumps(arguments).decode()
        answer.finish = "tool"
        answer.completion_tokens = count_tokens(turn.tool.name) + count_tokens(answer.tool_arguments) + 4
        return answer
    skilled = None
    if turn.json_schema is not None or not turn.json_mode:
        skilled = skill_answer(turn.model, turn.last_user_text, turn.json_schema if turn.json_mode else None)
    if skilled is None:
        skilled = _json_text(turn, knobs) if turn.json_mode else _prose(turn, knobs)
    elif turn.json_mode and knobs.json_breaks_now():
        skilled = "Sure! Here is the JSON you asked for: " + skilled[: max(1, len(skilled) // 2)]
    text = skilled
    _apply_limits(answer, text, turn)
    answer.pieces = _split_pieces(answer.text or "")
    return answer


def argument_pieces(arguments: str, size: int = 12) -> list[str]:
    """Tool-call arguments cut into streamed fragments, as providers send them."""
    return [arguments[i : i + size] for i in range(0, len(arguments), size)] or [""]


class PromptCache:
    """Remembers prompt prefixes so repeated long prefixes report cached tokens."""

    def __init__(self, capacity: int = 4096) -> None:
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        self._capacity = capacity

    def hit(self, prefix: bytes | None, prefix_tokens: int) -> int:
        """Cached tokens for this prefix (0 on first sight), and remember it."""
        if prefix is None or prefix_tokens < CACHE_MIN_TOKENS:
            return 0
        key = hashlib.blake2b(prefix, digest_size=16).digest()
        if key in self._seen:
            self._seen.move_to_end(key)
            return prefix_tokens - prefix_tokens % CACHE_STEP
        self._seen[key] = None
        if len(self._seen) > self._capacity:
            self._seen.popitem(last=False)
        return 0

    def clear(self) -> None:
        self._seen.clear()


@functools.lru_cache(maxsize=2048)
def embedding(text: str, dimensions: int) -> list[float]:
    """A deterministic pseudo-random unit vector seeded by the text (cached: benchmarks repeat inputs)."""
    values = array.array("h", hashlib.shake_256(text.encode()).digest(dimensions * 2))
    inv = 1.0 / (math.hypot(*values) or 1.0)
    return [v * inv for v in values]
