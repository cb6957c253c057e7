"""An organization's own patterns: compiled only in shapes that cannot backtrack without
bound, run with a time limit, and the custom recognizers built on them."""

from __future__ import annotations

import re
from dataclasses import dataclass

import regex

from guardrails.detectors import CHECKSUMS, Span

PATTERN_TIMEOUT = 0.02  # seconds one organization pattern may spend on one text


def pattern_matches(pattern: regex.Pattern, text: str, timeout: float = PATTERN_TIMEOUT) -> list[regex.Match]:
    """An organization's pattern over `text`, cut off after `timeout` (what it found so far)."""
    found: list[regex.Match] = []
    try:
        for match in pattern.finditer(text, timeout=timeout):
            found.append(match)
    except TimeoutError:
        pass
    return found


@dataclass(frozen=True, slots=True)
class CustomRecognizer:
    """An organization's own entity: a pattern, an optional checksum, optional context words."""

    entity: str
    pattern: regex.Pattern
    checksum: str = ""
    context: tuple[str, ...] = ()
    score: float = 0.8

    def find(self, text: str, lowered: str, out: list[Span]) -> None:
        check = CHECKSUMS.get(self.checksum)
        for match in pattern_matches(self.pattern, text):
            if match.end() == match.start():
                continue
            if check is not None and not check(match.group()):
                continue
            if self.context:
                window = lowered[max(0, match.start() - 60) : match.start()]
                if not any(word in window for word in self.context):
                    continue
            out.append(Span(match.start(), match.end(), self.entity, self.score))


NESTED_QUANTIFIER = re.compile(r"\((?:[^()\\]|\\.)*[+*}](?:[^()\\]|\\.)*\)[+*{]")


def custom_pattern_compile(pattern: str) -> regex.Pattern:
    """Compile an organization's pattern; refuse what could backtrack without bound.

    Patterns run through the `regex` module with a time limit (`pattern_matches`), a
    second line of defence for slow shapes this check cannot see.
    """
    if not pattern or len(pattern) > 500:
        raise ValueError("a pattern of 1 to 500 characters")
    if NESTED_QUANTIFIER.search(pattern) or re.search(r"\\\d|\(\?<?[=!]", pattern):
        raise ValueError("nested repetition, back-references and look-arounds are not allowed (they can be slow)")
    try:
        re.compile(pattern)  # the syntax both engines accept
        return regex.compile(pattern, regex.VERSION0)
    except (re.error, regex.error) as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from None
