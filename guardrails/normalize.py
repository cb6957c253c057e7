"""Unicode normalization before detection, with a map back to the original text.

Detection runs on a normalized copy (NFKC, zero-width and soft-hyphen characters
removed, every Unicode decimal digit folded to ASCII), so `j\u200dohn@exam\u00adple.com`
and full-width digits are found; replacements are then applied to the original
text through `origin`, which gives, for each normalized character, where it came
from. ASCII text is already normal: it is returned as is, with no map at all.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

INVISIBLE = frozenset(
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b\u200c\u200d\u200e\u200f"
    "\u202a\u202b\u202c\u202d\u202e\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069\ufeff"
)

# Latin look-alikes (Cyrillic, Greek) used to dodge keyword filters; applied for scoring only.
HOMOGLYPHS = str.maketrans(
    {
        "\u0430": "a",
        "\u0435": "e",
        "\u043e": "o",
        "\u0440": "p",
        "\u0441": "c",
        "\u0443": "y",
        "\u0445": "x",
        "\u0456": "i",
        "\u0458": "j",
        "\u0455": "s",
        "\u04bb": "h",
        "\u0501": "d",
        "\u0410": "A",
        "\u0412": "B",
        "\u0415": "E",
        "\u041a": "K",
        "\u041c": "M",
        "\u041d": "H",
        "\u041e": "O",
        "\u0420": "P",
        "\u0421": "C",
        "\u0422": "T",
        "\u0425": "X",
        "\u0406": "I",
        "\u03bf": "o",
        "\u03b1": "a",
        "\u03b5": "e",
        "\u03b9": "i",
        "\u03ba": "k",
        "\u03bd": "v",
        "\u03c1": "p",
        "\u03c4": "t",
        "\u03c5": "u",
        "\u039f": "O",
        "\u0391": "A",
        "\u0392": "B",
        "\u0395": "E",
        "\u0397": "H",
        "\u0399": "I",
        "\u039a": "K",
        "\u039c": "M",
        "\u039d": "N",
        "\u03a1": "P",
        "\u03a4": "T",
        "\u03a7": "X",
        "\u0396": "Z",
    }  # fmt: skip
)


@dataclass(frozen=True, slots=True)
class Normalized:
    text: str
    # origin[i] is the index in the original text of normalized character i;
    # origin[len(text)] is len(original). None when the text did not change.
    origin: tuple[int, ...] | None = None

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original span covering normalized characters start..end."""
        if self.origin is None:
            return start, end
        return self.origin[start], self.origin[end]


def _fold(char: str) -> str:
    if char in INVISIBLE:
        return ""
    folded = unicodedata.normalize("NFKC", char)
    if len(folded) == 1 and not folded.isascii() and folded.isdecimal():
        return str(unicodedata.decimal(folded))
    return folded


def normalize(text: str) -> Normalized:
    if text.isascii():
        return Normalized(text)
    out: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        if char.isascii():
            out.append(char)
            origin.append(index)
            continue
        folded = _fold(char)
        for piece in folded:
            out.append(piece)
            origin.append(index)
    # Map ends to the next original character: a span ending at normalized i ends
    # where normalized i starts (or at the end of the original text).
    origin.append(len(text))
    normal = "".join(out)
    if normal == text:
        return Normalized(text)
    return Normalized(normal, tuple(origin))


def fold_homoglyphs(text: str) -> str:
    return text.translate(HOMOGLYPHS)
