"""Where text lives in a request and in an answer, and copy-on-write assignment."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any

Path = tuple[Any, ...]


def request_slots(body: Mapping[str, Any], endpoint: str) -> Iterator[tuple[Path, str, str]]:
    """(path, text, role) for every piece of text a provider would read."""
    if endpoint == "embeddings":
        value = body.get("input")
        if isinstance(value, str):
            yield ("input",), value, "input"
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, str):
                    yield ("input", index), item, "input"
        return
    messages = body.get("messages")
    if not isinstance(messages, list):
        return
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping):
            continue
        role = message.get("role") if isinstance(message.get("role"), str) else "user"
        content = message.get("content")
        if isinstance(content, str):
            yield ("messages", index, "content"), content, role
        elif isinstance(content, list):
            for part_index, part in enumerate(content):
                if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                    yield ("messages", index, "content", part_index, "text"), part["text"], role
        calls = message.get("tool_calls")
        if isinstance(calls, list):
            for call_index, call in enumerate(calls):
                function = call.get("function") if isinstance(call, Mapping) else None
                if isinstance(function, Mapping) and isinstance(function.get("arguments"), str):
                    yield (
                        ("messages", index, "tool_calls", call_index, "function", "arguments"),
                        function["arguments"],
                        "arguments",
                    )


def assign(root: Any, path: Path, value: Any, copied: set[int]) -> None:
    """Set root[path] = value, copying each container on the way once (copy on write)."""
    node = root
    for key in path[:-1]:
        child = node[key]
        if id(child) not in copied:
            child = copy.copy(child)
            node[key] = child
            copied.add(id(child))
        node = child
    node[path[-1]] = value


def answer_slots(message: Mapping[str, Any]) -> Iterator[tuple[Path, str, bool]]:
    content = message.get("content")
    if isinstance(content, str):
        yield ("content",), content, False
    elif isinstance(content, list):
        for index, part in enumerate(content):
            if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                yield ("content", index, "text"), part["text"], False
    calls = message.get("tool_calls")
    if isinstance(calls, list):
        for index, call in enumerate(calls):
            function = call.get("function") if isinstance(call, Mapping) else None
            if isinstance(function, Mapping) and isinstance(function.get("arguments"), str):
                yield ("tool_calls", index, "function", "arguments"), function["arguments"], True
