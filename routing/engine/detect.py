"""Sensitive-data detection for classification: fast enough to run on every request.

The recognizers are the guard's (`guardrails.detectors`): one detector for
classification and for PII tokenization, so both always agree on what counts as
an e-mail, a payment card (Luhn), an IBAN (mod 97), a phone number or an SSN.
Only the kinds found are reported here — never the values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import combinations
from types import MappingProxyType
from typing import Any

from guardrails.detectors import CREDIT_CARD, EMAIL, IBAN, PHONE, US_SSN, Detector, iban_valid, luhn_valid
from guardrails.normalize import normalize

__all__ = ["detect", "iban_valid", "input_text", "luhn_valid", "message_text"]

KIND_ENTITY = {"email": EMAIL, "phone": PHONE, "card": CREDIT_CARD, "ssn": US_SSN, "iban": IBAN}
ENTITY_KIND = {entity: kind for kind, entity in KIND_ENTITY.items()}


# Every subset of the five kinds, built once: immutable, so safe to share.
_DETECTORS: Mapping[frozenset[str], Detector] = MappingProxyType(
    {
        frozenset(subset): Detector([KIND_ENTITY[k] for k in subset])
        for size in range(1, len(KIND_ENTITY) + 1)
        for subset in combinations(KIND_ENTITY, size)
    }
)


def detect(text: str, kinds: Iterable[str]) -> set[str]:
    """Which of `kinds` (email, phone, card, ssn, iban) occur in `text`."""
    if not text:
        return set()
    wanted = frozenset(kinds).intersection(KIND_ENTITY)
    if not wanted:
        return set()
    detector = _DETECTORS[wanted]
    return {ENTITY_KIND[span.entity] for span in detector.find(normalize(text).text)}


def message_text(messages: Any) -> str:
    """Every piece of text in OpenAI chat messages, joined (what a provider would see)."""
    if not isinstance(messages, list):
        return ""
    parts: list[str] = []
    for message in messages:
        if not isinstance(message, Mapping):
            continue
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, Mapping):
                    text = part.get("text")
                    if isinstance(text, str):
                        parts.append(text)
        for call in message.get("tool_calls") or ():
            function = call.get("function") if isinstance(call, Mapping) else None
            if isinstance(function, Mapping) and isinstance(function.get("arguments"), str):
                parts.append(function["arguments"])
    return "\n".join(parts)


def input_text(value: Any) -> str:
    """The text of an embeddings `input` (token arrays carry no readable text)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(item for item in value if isinstance(item, str))
    return ""
