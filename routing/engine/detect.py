"""Sensitive-data detection for classification: fast enough to run on every request.

Each detector is one precompiled regular expression, skipped entirely when a
cheap test rules it out ('@' for e-mail, enough digits for numbers); checksums
(Luhn for payment cards, ISO 7064 mod 97 for IBANs) run only on candidates the
expression found. Only the kinds found are reported — never the values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
PHONE = re.compile(
    r"(?<![\d+])(?<!\d[ .-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?|\d{2,4}[ .-])\d{3,4}[ .-]\d{3,4}(?![ .-]?\d)"
    r"|(?<![\w+])\+\d{7,14}(?!\d)"
)
CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
SSN = re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])")

# Scanning prose character by character with Python's regex engine is slow (tens of
# microseconds per detector for 2 KB). Instead the text is mapped once, at C speed,
# onto a tiny alphabet — digit "0", upper-case letter "A", separator ".", anything
# else "x" — where candidate spans start with a literal and are found by a fast
# search; the detailed expressions and checksums then run on those short spans only.
_MAP = bytes(48 if 48 <= c <= 57 else 65 if 65 <= c <= 90 else 46 if c in b" .()/-+" else 120 for c in range(256))
IBAN_SHAPE = re.compile(rb"AA00(?:\.?[A0]){11,32}")
CARD_SHAPE = re.compile(rb"0[0.]{12,}")
SSN_SHAPE = re.compile(rb"000\.00\.0000")
PHONE_SHAPE = re.compile(rb"00(?:\.{1,2}0{3,4}){2}")
PLUS_PHONE_SHAPE = re.compile(rb"0000000")  # international digits after a "+", checked on the text
EMAIL_WINDOW = 256


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def iban_valid(text: str) -> bool:
    compact = text.replace(" ", "")
    if not 15 <= len(compact) <= 34 or not compact.isalnum():
        return False
    rotated = compact[4:] + compact[:4]
    number = "".join(str(int(char, 36)) for char in rotated)
    return int(number) % 97 == 1


def _iban_in(span: str) -> bool:
    """A span may run into the next word: try it shortened, longest first."""
    compact = span.replace(" ", "")
    return any(iban_valid(compact[:length]) for length in range(min(len(compact), 34), 14, -1))


def _email(text: str) -> bool:
    at = text.find("@")
    checked = 0
    while at >= 0 and checked < 50:
        if EMAIL.search(text, max(0, at - 64), at + EMAIL_WINDOW):
            return True
        at = text.find("@", at + 1)
        checked += 1
    return False


def _segment(raw: bytes, start: int, end: int) -> str:
    return raw[max(0, start - 4) : end + 4].decode("ascii", "ignore")


def _numbers(raw: bytes, kinds: set[str], found: set[str]) -> None:
    mapped = raw.translate(_MAP)
    claimed: list[tuple[int, int]] = []
    if "iban" in kinds:
        for match in IBAN_SHAPE.finditer(mapped):
            if _iban_in(raw[match.start() : match.end()].decode("ascii", "ignore")):
                found.add("iban")
                claimed.append(match.span())
                break

    def free(start: int) -> bool:
        return not any(s <= start < e for s, e in claimed)

    if "card" in kinds:
        for match in CARD_SHAPE.finditer(mapped):
            if free(match.start()) and _card_in(_segment(raw, *match.span())):
                found.add("card")
                claimed.append(match.span())
                break
    if "ssn" in kinds:
        for match in SSN_SHAPE.finditer(mapped):
            if free(match.start()) and SSN.search(_segment(raw, *match.span())):
                found.add("ssn")
                break
    if "phone" in kinds:
        shapes = (PHONE_SHAPE, PLUS_PHONE_SHAPE) if b"+" in raw else (PHONE_SHAPE,)
        for shape in shapes:
            for match in shape.finditer(mapped):
                if free(match.start()) and PHONE.search(_segment(raw, *match.span())):
                    found.add("phone")
                    return


def _card_in(segment: str) -> bool:
    for candidate in CARD.finditer(segment):
        digits = candidate.group().replace(" ", "").replace("-", "")
        if digits[0] in "23456" and luhn_valid(digits):
            return True
    return False


def detect(text: str, kinds: Iterable[str]) -> set[str]:
    """Which of `kinds` (email, phone, card, ssn, iban) occur in `text`."""
    found: set[str] = set()
    if not text:
        return found
    wanted = set(kinds)
    if "email" in wanted and "@" in text and _email(text):
        found.add("email")
    wanted.discard("email")
    if wanted:
        _numbers(text.encode("utf-8", "ignore"), wanted, found)
    return found


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
