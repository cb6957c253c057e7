"""Placeholders for one request, and their restoration in answers and streams.

The `Vault` lives in memory for one request: placeholder -> original value, never
stored or logged. Placeholders are stable: the same value gets the same
placeholder within a request, and across the turns of one conversation through
`ConversationMemory`, which remembers keyed digests of values (not the values).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
from collections import OrderedDict

PLACEHOLDER = re.compile(r"<([A-Z][A-Z0-9_]{0,39})_(\d{1,5})>")


class ConversationMemory:
    """Conversation -> {digest of (entity, value): placeholder}, bounded and expiring.

    Owned by the `Guard` (one per process); holds no original values.
    """

    def __init__(self, *, key: bytes, capacity: int = 10_000, ttl_seconds: float = 24 * 3600) -> None:
        self._key = key
        self._capacity = capacity
        self._ttl = ttl_seconds
        self._items: OrderedDict[str, tuple[float, dict[bytes, str]]] = OrderedDict()
        self._lock = threading.Lock()

    def digest(self, entity: str, value: str) -> bytes:
        return hmac.new(self._key, f"{entity}\x00{value}".encode(), hashlib.sha256).digest()[:16]

    def get(self, conversation: str) -> dict[bytes, str]:
        with self._lock:
            item = self._items.get(conversation)
            if item is None or item[0] < time.monotonic() - self._ttl:
                return {}
            self._items.move_to_end(conversation)
            return dict(item[1])

    def put(self, conversation: str, numbers: dict[bytes, str]) -> None:
        if not numbers:
            return
        with self._lock:
            current = self._items.get(conversation)
            merged = dict(current[1]) if current else {}
            merged.update(numbers)
            self._items[conversation] = (time.monotonic(), merged)
            self._items.move_to_end(conversation)
            while len(self._items) > self._capacity:
                self._items.popitem(last=False)


class Vault:
    """placeholder <-> value for one request. Never persisted."""

    __slots__ = ("_by_key", "_originals", "_next", "_known", "_taken", "_new", "_longest")

    def __init__(self, known: dict[bytes, str] | None = None) -> None:
        self._by_key: dict[tuple[str, str], str] = {}
        self._originals: dict[str, str] = {}
        self._next: dict[str, int] = {}
        self._known = known or {}
        self._taken = frozenset(self._known.values())
        self._new: dict[bytes, str] = {}
        self._longest = 0

    def __len__(self) -> int:
        return len(self._originals)

    def __bool__(self) -> bool:
        return bool(self._originals)

    @property
    def longest(self) -> int:
        return self._longest

    @property
    def placeholders(self) -> tuple[str, ...]:
        return tuple(self._originals)

    def token(self, entity: str, canonical: str, original: str, memory: ConversationMemory | None = None) -> str:
        key = (entity, canonical)
        placeholder = self._by_key.get(key)
        if placeholder is not None:
            return placeholder
        digest = memory.digest(entity, canonical) if memory is not None else None
        placeholder = self._known.get(digest) if digest is not None else None
        if placeholder is None or placeholder in self._originals:
            number = self._next.get(entity, 0) + 1
            while f"<{entity}_{number}>" in self._originals or f"<{entity}_{number}>" in self._taken:
                number += 1
            self._next[entity] = number
            placeholder = f"<{entity}_{number}>"
        self._by_key[key] = placeholder
        self._originals[placeholder] = original
        self._longest = max(self._longest, len(placeholder))
        if digest is not None:
            self._new[digest] = placeholder
        return placeholder

    def remembered(self) -> dict[bytes, str]:
        return self._new

    def original(self, placeholder: str) -> str | None:
        return self._originals.get(placeholder)

    def restore(self, text: str, *, json_string: bool = False) -> str:
        """Placeholders in `text` replaced by their values (JSON-escaped inside JSON strings)."""
        if not self._originals or "<" not in text:
            return text

        def put(match: re.Match) -> str:
            value = self._originals.get(match.group())
            if value is None:
                return match.group()
            return json.dumps(value)[1:-1] if json_string else value

        return PLACEHOLDER.sub(put, text)

    def hold_from(self, text: str) -> int:
        """Where a possibly incomplete placeholder starts at the end of `text` (len(text) if none)."""
        at = text.rfind("<", max(0, len(text) - self._longest))
        if at < 0:
            return len(text)
        tail = text[at:]
        if ">" in tail:
            return len(text)
        for placeholder in self._originals:
            if placeholder.startswith(tail):
                return at
        return len(text)
