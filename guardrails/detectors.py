"""PII and secret recognizers: fast, offline, linear in the input.

`Detector.find(text)` returns spans (start, end, entity, score) over the text it is
given (callers pass normalized text, see `normalize.py`). Every recognizer sits
behind a cheap prefilter (a character or literal that must occur), so text with
nothing in it costs one pass of a few C-speed `in` tests. Regular expressions use
bounded repetition and a look-behind that stops a match starting inside a run of
its own characters, so no input makes them backtrack more than a constant per
position; PEM blocks are found with `str.find`. Checksums (Luhn, ISO 7064 mod 97,
SSN area rules, IP address validity) run on candidates only.
"""

# ruff: noqa: E501 - the patterns read best on one line each

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from guardrails.patterns import CustomRecognizer

EMAIL = "EMAIL"
PHONE = "PHONE"
CREDIT_CARD = "CREDIT_CARD"
IBAN = "IBAN"
US_SSN = "US_SSN"
IP_ADDRESS = "IP_ADDRESS"
DATE_OF_BIRTH = "DATE_OF_BIRTH"
ADDRESS = "ADDRESS"
AWS_ACCESS_KEY = "AWS_ACCESS_KEY"
GITHUB_TOKEN = "GITHUB_TOKEN"
SLACK_TOKEN = "SLACK_TOKEN"
OPENAI_KEY = "OPENAI_KEY"
JWT = "JWT"
PRIVATE_KEY = "PRIVATE_KEY"
API_KEY = "API_KEY"

PII_ENTITIES = (EMAIL, PHONE, CREDIT_CARD, IBAN, US_SSN, IP_ADDRESS, DATE_OF_BIRTH, ADDRESS)
SECRET_ENTITIES = (AWS_ACCESS_KEY, GITHUB_TOKEN, SLACK_TOKEN, OPENAI_KEY, JWT, PRIVATE_KEY, API_KEY)
BUILTIN_ENTITIES = PII_ENTITIES + SECRET_ENTITIES
ENTITY_NAME = re.compile(r"[A-Z][A-Z0-9_]{1,39}")


@dataclass(frozen=True, slots=True)
class Span:
    start: int
    end: int
    entity: str
    score: float


# ---- checksums ----------------------------------------------------------------


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
    compact = text.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34 or not compact.isalnum() or not compact[:2].isalpha():
        return False
    rotated = compact[4:] + compact[:4]
    number = "".join(str(int(char, 36)) for char in rotated)
    return int(number) % 97 == 1


CHECKSUMS: dict[str, Callable[[str], bool]] = {
    "luhn": lambda value: luhn_valid("".join(c for c in value if c.isdigit())),
    "mod97": iban_valid,
}


def entropy(value: str) -> float:
    counts: dict[str, int] = {}
    for char in value:
        counts[char] = counts.get(char, 0) + 1
    size = len(value)
    return -sum(n / size * math.log2(n / size) for n in counts.values())


# ---- numbers: one pass onto a tiny alphabet -----------------------------------
# Digits map to "0", capitals to "A", separators to ".", anything else to "x";
# candidate shapes are then found on that byte string and checked on the text.

_MAP = bytes(48 if 48 <= c <= 57 else 65 if 65 <= c <= 90 else 46 if c in b" .()/-+" else 120 for c in range(256))
IBAN_SHAPE = re.compile(rb"AA00(?:\.?[A0]){11,32}")
CARD_SHAPE = re.compile(rb"0000[0.]{9,}")
SSN_SHAPE = re.compile(rb"000\.00\.0000")
PHONE_SHAPE = re.compile(rb"00(?:\.{1,2}0{3,4}){2}")
PLUS_PHONE_SHAPE = re.compile(rb"0000000")  # international digits after a "+", checked on the text
CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
SSN = re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])")
PHONE_RE = re.compile(
    r"(?<![\d+])(?<!\d[ .-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?|\d{2,4}[ .-])\d{3,4}[ .-]\d{3,4}(?![ .-]?\d)"
    r"|(?<![\w+])\+\d{7,14}(?!\d)"
)
MARGIN = 5


def _window(text: str, start: int, end: int) -> tuple[int, int]:
    return max(0, start - MARGIN), min(len(text), end + MARGIN)


def _iban(text: str, start: int, end: int) -> Span | None:
    """A candidate may run into the next word: try it shortened, longest first."""
    candidate = text[start:end]
    for stop in range(len(candidate), 14, -1):
        if candidate[stop - 1] != " " and iban_valid(candidate[:stop]):
            return Span(start, start + stop, IBAN, 0.95)
    return None


def _mapped(text: str) -> bytes:
    """The text on the tiny alphabet; one byte per character (non-ASCII becomes 'x')."""
    return text.encode("ascii", "replace").translate(_MAP)


def _numbers(text: str, mapped: bytes, wanted: frozenset[str], out: list[Span]) -> None:
    claimed: list[tuple[int, int]] = []

    def free(start: int, end: int) -> bool:
        return not any(s < end and start < e for s, e in claimed)

    def take(span: Span) -> None:
        out.append(span)
        claimed.append((span.start, span.end))

    if IBAN in wanted and b"AA00" in mapped:
        for match in IBAN_SHAPE.finditer(mapped):
            if match.start() > 0 and mapped[match.start() - 1] in b"A0":
                continue
            span = _iban(text, *match.span())
            if span:
                take(span)
    if CREDIT_CARD in wanted:
        for match in CARD_SHAPE.finditer(mapped):
            for card in CARD.finditer(text, *_window(text, *match.span())):
                if card.start() > 0 and text[card.start() - 1] == "+":
                    continue  # an international phone number
                digits = card.group().replace(" ", "").replace("-", "")
                if digits[0] in "23456" and free(*card.span()) and luhn_valid(digits):
                    take(Span(card.start(), card.end(), CREDIT_CARD, 0.95))
    if US_SSN in wanted and b"000.00.0000" in mapped:
        for match in SSN_SHAPE.finditer(mapped):
            found = SSN.search(text, *_window(text, *match.span()))
            if found and free(*found.span()):
                take(Span(found.start(), found.end(), US_SSN, 0.85))
    if PHONE in wanted:
        shapes = (PHONE_SHAPE, PLUS_PHONE_SHAPE) if "+" in text else (PHONE_SHAPE,)
        for shape in shapes:
            for match in shape.finditer(mapped):
                pos, endpos = _window(text, *match.span())
                found = PHONE_RE.search(text, max(0, pos - 4), min(len(text), endpos + 12))
                if found and free(*found.span()):
                    take(Span(found.start(), found.end(), PHONE, 0.75))


# ---- patterns -------------------------------------------------------------------

EMAIL_RE = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,6}\.[A-Za-z]{2,24}(?![A-Za-z0-9-])"
)
IPV4_RE = re.compile(
    r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\d.])"
)
IPV6_RE = re.compile(r"(?<![0-9A-Za-z:])(?:[0-9A-Fa-f]{1,4}|:)(?::[0-9A-Fa-f]{0,4}){2,8}(?![0-9A-Za-z:])")
AWS_RE = re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}(?![A-Z0-9])")
GITHUB_RE = re.compile(
    r"(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,244})(?![A-Za-z0-9_])"
)
SLACK_RE = re.compile(
    r"(?<![A-Za-z0-9-])xox[abposre]-[A-Za-z0-9-]{10,200}(?![A-Za-z0-9-])"
    r"|https://hooks\.slack\.com/services/[A-Za-z0-9_/]{20,120}"
)
OPENAI_RE = re.compile(r"(?<![A-Za-z0-9_-])sk-(?:proj-|svcacct-|admin-|ant-)?[A-Za-z0-9_-]{20,200}(?![A-Za-z0-9_-])")
JWT_RE = re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{4,2000}\.eyJ[A-Za-z0-9_-]{4,8000}\.[A-Za-z0-9_-]{8,2000}")
SECRET_CONTEXT_RE = re.compile(
    r"(?i)(?<![a-z])(?:api[_ -]?key|apikey|access[_ -]?key|secret|token|password|passwd|credential|bearer|auth)"
)
TOKEN_RE = re.compile(r"[A-Za-z0-9_\-+/=.]{20,200}")
DATE_RE = re.compile(
    r"(?<![\d/.-])(?:(?:19|20)\d\d[-/.](?:0?[1-9]|1[0-2])[-/.](?:0?[1-9]|[12]\d|3[01])"
    r"|(?:0?[1-9]|[12]\d|3[01])[-/.](?:0?[1-9]|1[0-2])[-/.](?:19|20)\d\d"
    r"|(?:0?[1-9]|1[0-2])[-/.](?:0?[1-9]|[12]\d|3[01])[-/.](?:19|20)\d\d"
    r"|(?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th)? (?:of )?(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]{0,6}\.?,? (?:19|20)\d\d"
    r"|(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]{0,6}\.? (?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th)?,? (?:19|20)\d\d"
    r")(?![\d/.-]?\d)",
    re.IGNORECASE,
)
DOB_CONTEXT_RE = re.compile(r"(?i)(?:born|birth|d\.?o\.?b\b|birthday|geburtsdatum|née?\b|date de naissance)")
STREET_SUFFIX = (
    r"street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|way|place|pl|terrace|parkway|pkwy"
    r"|square|sq|highway|hwy|circle|cir|strasse|straße|rue"
)
ADDRESS_RE = re.compile(
    r"(?<![\w-])\d{1,6}[A-Za-z]? (?:[A-Z][a-z]{1,20}\.? ){1,4}(?:" + STREET_SUFFIX + r")\b\.?"
    r"(?:,? (?:(?:apt|suite|unit|#)\.? ?\w{1,6},? )?[A-Z][a-z]{1,20}(?: [A-Z][a-z]{1,20}){0,2},? [A-Z]{2} \d{5}(?:-\d{4})?)?",
    re.IGNORECASE,
)
SECRET_WORDS = ("key", "secret", "token", "passw", "credential", "bearer", "auth")
PEM_BEGIN = "-----BEGIN "
_DIGIT = re.compile("[0-9]")  # what makes `raw.translate(_MAP)` hold b"0" in `Detector.find`
_COLONS = re.compile(":[^:]{0,4}:")  # what `_ipv6_windows` needs to open a window
_SECRET_WORD = re.compile("|".join(SECRET_WORDS))  # over lowered text: any(word in lowered)
PEM_LABEL_END = "PRIVATE KEY-----"


def _aws_marked(text: str) -> bool:
    return "AKIA" in text or "ASIA" in text or "AROA" in text or "AIDA" in text


def _slack_marked(text: str) -> bool:
    return "xox" in text or "hooks.slack.com" in text


def _regex(pattern: re.Pattern, entity: str, score: float, text: str, out: list[Span]) -> None:
    for match in pattern.finditer(text):
        out.append(Span(match.start(), match.end(), entity, score))


_HEX = frozenset("0123456789abcdefABCDEF")


def _ipv6_windows(text: str) -> list[tuple[int, int]]:
    """Regions around a colon that has hex on both sides and another colon close by."""
    windows: list[tuple[int, int]] = []
    at = text.find(":")
    size = len(text)
    while at >= 0:
        following = text.find(":", at + 1, at + 6)
        if following >= 0 and (text[at - 1 : at] in _HEX or text[at + 1 : at + 2] in _HEX or following == at + 1):
            start = max(0, at - 40)
            if windows and start <= windows[-1][1]:
                windows[-1] = (windows[-1][0], min(size, at + 45))
            else:
                windows.append((start, min(size, at + 45)))
            at = text.find(":", following)
        else:
            at = text.find(":", at + 1)
    return windows


def _ipv6(text: str, out: list[Span]) -> None:
    for start, end in _ipv6_windows(text):
        _ipv6_in(text, start, end, out)


def _ipv6_in(text: str, start: int, end: int, out: list[Span]) -> None:
    for match in IPV6_RE.finditer(text, start, end):
        value = match.group()
        if value.count(":") < 2 or sum(c.isalnum() for c in value) < 3:
            continue
        try:
            ipaddress.IPv6Address(value)
        except ValueError:
            continue
        out.append(Span(match.start(), match.end(), IP_ADDRESS, 0.8))


def _pem(text: str, out: list[Span]) -> None:
    at = text.find(PEM_BEGIN)
    while at >= 0:
        label_end = text.find(PEM_LABEL_END, at, at + 80)
        if label_end < 0:
            at = text.find(PEM_BEGIN, at + 1)
            continue
        end = text.find("-----END ", label_end)
        if end < 0:
            return
        close = text.find("-----", end + 9)
        stop = close + 5 if close >= 0 else end + 9
        out.append(Span(at, stop, PRIVATE_KEY, 1.0))
        at = text.find(PEM_BEGIN, stop)


def _generic_secret(text: str, out: list[Span]) -> None:
    last = -1
    for context in SECRET_CONTEXT_RE.finditer(text):
        if context.start() < last:
            continue
        window_end = context.end() + 40
        for token in TOKEN_RE.finditer(text, context.end(), window_end + 200):
            if token.start() > window_end:
                break
            value = token.group().strip(".")
            if (
                len(value) >= 20
                and any(c.isdigit() for c in value)
                and any(c.isalpha() for c in value)
                and entropy(value) >= 3.5
            ):
                out.append(Span(token.start(), token.start() + len(value), API_KEY, 0.7))
                last = token.end()
                break


def _dob(text: str, out: list[Span]) -> None:
    for match in DATE_RE.finditer(text):
        if DOB_CONTEXT_RE.search(text, max(0, match.start() - 40), match.start()):
            out.append(Span(match.start(), match.end(), DATE_OF_BIRTH, 0.8))


def _resolve(spans: list[Span]) -> list[Span]:
    """Overlaps go to the highest score, then the longest span (one sweep, n log n)."""
    if len(spans) < 2:
        return spans
    spans.sort(key=lambda s: (s.start, -s.end))
    kept: list[Span] = []
    for span in spans:
        if kept and span.start < kept[-1].end:
            last = kept[-1]
            if (span.score, span.end - span.start) > (last.score, last.end - last.start):
                kept[-1] = span
            continue
        kept.append(span)
    return kept


class Detector:
    """The recognizers one policy turns on, with the organization's own added.

    Immutable once built; one instance serves every request of its snapshot.
    """

    def __init__(self, entities: Iterable[str] = BUILTIN_ENTITIES, custom: Iterable[CustomRecognizer] = ()) -> None:
        self.entities = frozenset(entities)
        self.custom = tuple(custom)
        self._numbers = self.entities & {CREDIT_CARD, IBAN, US_SSN, PHONE}
        self._mapped_needed = bool(
            self.entities & {CREDIT_CARD, IBAN, US_SSN, PHONE, IP_ADDRESS, ADDRESS, DATE_OF_BIRTH}
        )

    # The longest literal `triggers` looks for, less one: a region scanned for them must
    # start this far back into text already scanned, to see a literal cut in two.
    TRIGGER_OVERLAP = len("hooks.slack.com") - 1

    def triggers(self, text: str) -> bool:
        """Whether `text` holds anything one of this detector's prefilters in `find` waits for.

        A superset of those prefilters, each reduced to what must occur: a digit for the
        number shapes, "@", two colons at most five characters apart for IPv6 (what
        `_ipv6_windows` needs; prose is full of single colons), "_" for GitHub tokens,
        the secrets' literals and the generic secret's words. Where no part of a text
        holds one, `find` finds nothing in it, so a stream can skip `find` until one
        arrives. Always true with organization recognizers (their patterns need no literal).
        """
        if self.custom:
            return True
        wanted = self.entities
        if self._mapped_needed and _DIGIT.search(text):
            return True
        if (EMAIL in wanted and "@" in text) or (IP_ADDRESS in wanted and ":" in text and _COLONS.search(text)):
            return True
        if GITHUB_TOKEN in wanted and "_" in text:
            return True
        if AWS_ACCESS_KEY in wanted and _aws_marked(text):
            return True
        if SLACK_TOKEN in wanted and _slack_marked(text):
            return True
        if (OPENAI_KEY in wanted and "sk-" in text) or (JWT in wanted and "eyJ" in text):
            return True
        if PRIVATE_KEY in wanted and PEM_BEGIN in text:
            return True
        return API_KEY in wanted and _SECRET_WORD.search(text.lower()) is not None

    def find(self, text: str) -> list[Span]:
        if not text:
            return []
        out: list[Span] = []
        wanted = self.entities
        if EMAIL in wanted and "@" in text:
            _regex(EMAIL_RE, EMAIL, 0.95, text, out)
        raw = text.encode("ascii", "replace") if self._mapped_needed else b""
        if raw and b"0" in (mapped := raw.translate(_MAP)):
            if self._numbers and b"00" in mapped:
                _numbers(text, mapped, self._numbers, out)
            if IP_ADDRESS in wanted or ADDRESS in wanted:
                fine = raw.translate(_FINE)
                if IP_ADDRESS in wanted and b"0.0" in fine:
                    _ipv4(text, fine, out)
                if ADDRESS in wanted and b"0 A" in fine:
                    _address(text, fine, out)
            if DATE_OF_BIRTH in wanted:
                lowered = text.lower()
                if "birth" in lowered or "born" in lowered or "dob" in lowered or "d.o.b" in lowered:
                    _dob(text, out)
        if IP_ADDRESS in wanted and ":" in text:
            _ipv6(text, out)
        self._secrets(text, out)
        if self.custom:
            lowered = text.lower()
            for recognizer in self.custom:
                recognizer.find(text, lowered, out)
        return _resolve(out)

    def _secrets(self, text: str, out: list[Span]) -> None:
        wanted = self.entities
        if AWS_ACCESS_KEY in wanted and _aws_marked(text):
            _regex(AWS_RE, AWS_ACCESS_KEY, 0.95, text, out)
        if GITHUB_TOKEN in wanted and ("gh" in text and ("_" in text)):
            _regex(GITHUB_RE, GITHUB_TOKEN, 0.95, text, out)
        if SLACK_TOKEN in wanted and _slack_marked(text):
            _regex(SLACK_RE, SLACK_TOKEN, 0.95, text, out)
        if OPENAI_KEY in wanted and "sk-" in text:
            _regex(OPENAI_RE, OPENAI_KEY, 0.9, text, out)
        if JWT in wanted and "eyJ" in text:
            _regex(JWT_RE, JWT, 0.95, text, out)
        if PRIVATE_KEY in wanted and PEM_BEGIN in text:
            _pem(text, out)
        if API_KEY in wanted:
            lowered = text.lower()
            if any(word in lowered for word in SECRET_WORDS):
                _generic_secret(text, out)


# A finer map for IPv4 and street addresses: "." and " " stay themselves.
_FINE = bytes(48 if 48 <= c <= 57 else 65 if 65 <= c <= 90 else c if c in b". " else 120 for c in range(256))
IPV4_SHAPE = re.compile(rb"0\.0{1,3}\.0{1,3}\.0")
ADDRESS_SHAPE = re.compile(rb"0 A")


def _ipv4(text: str, fine: bytes, out: list[Span]) -> None:
    stop = -1
    for shape in IPV4_SHAPE.finditer(fine):
        if shape.start() < stop:
            continue
        match = IPV4_RE.search(text, max(0, shape.start() - 3), min(len(text), shape.end() + 3))
        if match:
            out.append(Span(match.start(), match.end(), IP_ADDRESS, 0.8))
            stop = match.end()


def _address(text: str, fine: bytes, out: list[Span]) -> None:
    stop = -1
    for shape in ADDRESS_SHAPE.finditer(fine):
        start = shape.start()
        if start < stop:
            continue
        floor = max(0, start - 7)
        while start > floor and fine[start - 1] == 48:
            start -= 1
        match = ADDRESS_RE.match(text, start)
        if match:
            out.append(Span(match.start(), match.end(), ADDRESS, 0.6))
            stop = match.end()
