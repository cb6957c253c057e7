# ruff: noqa: E501 - the patterns read best on one line each
"""Jailbreak and prompt-injection scoring: weighted patterns per family, offline.

Each family is a set of patterns with weights; a family's score is
1 - prod(1 - w) over the patterns that match, and a text's score is the highest
family score. Families only run when one of their trigger words occurs (plain
substring tests), so ordinary text costs a handful of C-speed scans. Obfuscated
text is decoded first — base64, hex, rot13, leetspeak, spaced-out letters (and,
through `normalize`, homoglyphs) — and the decoded text is scored the same way.
Tool results and retrieved documents are scored as "indirect", separately.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from dataclasses import dataclass

from guardrails.normalize import fold_homoglyphs

FAMILIES = ("override", "roleplay", "extraction", "delimiter", "obfuscation", "indirect")

_W = r"[^.\n!?]{0,40}?"


def _p(pattern: str) -> re.Pattern:
    return re.compile(pattern)


def _words(words: str, *symbols: str) -> tuple[frozenset[str], tuple[str, ...]]:
    """A family's triggers: whole words (looked up in the text's word set) and symbols (substrings)."""
    return frozenset(words.split()), symbols


# Lower-case letters stay, everything else splits words.
_LETTERS = bytes(c if 97 <= c <= 122 else 32 for c in range(256))


def word_set(lowered: str) -> frozenset[str]:
    return frozenset(lowered.encode("ascii", "replace").translate(_LETTERS).decode("ascii").split())


OVERRIDE = (
    _words("ignore ignoring ignored ignores disregard disregarding forget override overriding bypass skip nevermind mind "
           "everything instead now instruction instructions follow following aside attention just discard neglect"),
    [
        (_p(r"\b(?:ignore|ignoring|disregard|forget|skip|override|bypass|neglect|set aside|pay no attention to|do not follow|don't follow|stop following|discard)\b"
            + _W + r"\b(?:previous|prior|above|preceding|earlier|foregoing|initial|original|your|system|developer|preset|all (?:of )?(?:the |your )?(?:previous|prior|above|earlier))\b"
            + _W + r"\b(?:instructions?|directions?|directives?|prompts?|rules|guidelines|commands?|context|orders|constraints|programming|guidance|policies|restrictions)\b"), 0.86),
        (_p(r"\b(?:ignore|disregard|forget|pay no attention to|do not follow|don't follow)\b" + _W
            + r"\b(?:instructions|directions|rules|guidelines|prompts?|directives)\b" + _W
            + r"\b(?:above|before|previously|earlier|you (?:were|have been) (?:given|told))"), 0.8),
        (_p(r"\b(?:ignore|disregard|forget)\b (?:all |any )?(?:the |your )?(?:previous|prior|above|preceding|earlier|system|developer) (?:message|messages|text|content|input)\b"), 0.6),
        (_p(r"\b(?:no longer|not|never) (?:be )?(?:bound|restricted|limited|constrained|governed) by\b[^.\n]{0,30}?\b(?:instructions|rules|guidelines|programming|policies|restrictions)\b"), 0.85),
        (_p(r"\b(?:ignore|disregard|forget)\b (?:any|all|every)(?: of)? (?:the )?(?:previous |prior |above |other |following |and following )*(?:instructions?|directions|rules|prompts?|commands)\b"), 0.8),
        (_p(r"\b(?:ignore|disregard|forget) (?:everything|all that|all of that|what) (?:(?:i|you) (?:said|told|were told|have been told)|above|before|previously)"), 0.8),
        (_p(r"\b(?:ignore|disregard|forget)\b" + _W + r"\b(?:and|then|instead)\b" + _W + r"\b(?:say|print|output|write|respond|reply|repeat|tell|spell check|translate)\b"), 0.45),
        (_p(r"\bstop everything\b"), 0.7),
        (_p(r"\b(?:ignore|disregard)\b (?:all )?(?:instructions|directions)\b"), 0.7),
        (_p(r"\b(?:ignore|disregard) (?:the rest of|everything (?:else|except)|all (?:negative|other|info|information)|any (?:other|further))\b"), 0.6),
        (_p(r"\bdisregard (?:all |any )?(?:info|information|data|content)\b"), 0.5),
        (_p(r"\b(?:ignore|disregard) (?:them|it|this|that) and (?:instead|only|just)\b"), 0.5),
        (_p(r"\bforget (?:everything|all) (?:you (?:learned|know|were told|have been told)|(?:that )?(?:i|you) (?:said|told))"), 0.6),
        (_p(r"\b(?:nevermind|never mind)\b[.,!]*\s*(?:ignore|instead|just|now)\b"), 0.6),
        (_p(r"\b(?:just|only|instead) (?:say|print|output|write|repeat|respond with)\b\W{0,3}[\"'`]"), 0.45),
        (_p(r"\b(?:new|updated|real|actual|true|revised) (?:instructions?|task|rules|objective|directive)s?\s*(?::|are\b|is\b|follow)"), 0.5),
        (_p(r"\byour (?:new|real|true|only) (?:instructions?|task|purpose|goal|objective)\b"), 0.55),
        (_p(r"\bfrom now on,? (?:you|your|ignore|only|always)\b"), 0.35),
        (_p(r"\b(?:instead of|rather than) (?:following|obeying|doing) (?:your|the|those|these) (?:instructions|rules|task)"), 0.6),
    ],
)  # fmt: skip

ROLEPLAY = (
    _words("dan jailbreak jailbroken jailbreaking jailbreaks jailbroke developer mode anything pretend pretending role "
           "roleplay act acting character persona unfiltered uncensored restrictions restricted restriction unrestricted "
           "limitations filters filtered filtering censorship censored ethics ethical unethical morals moral amoral "
           "immoral morality policy policies refuse decline evil rogue hypothetical hypothetically simulate simulation "
           "simulating immerse now confines guidelines boundaries safeguards tokens token points responses answers "
           "paragraphs outputs warnings disclaimers apologize apologise unshackled liberated freed unchained "
           "rebellious ai assistant bot model chatbot confidant restrained principles virtues personalities personas ways "
           "characters named called take step illegal harmful explicit offensive hate speech dangerous chatgpt"),
    [
        (_p(r"\bdo anything now\b"), 0.9),
        (_p(r"\bjailbr(?:ea|o)k(?:en|ed|ing|s)?\b"), 0.6),
        (_p(r"\bdeveloper mode\b"), 0.45),
        (_p(r"\b(?:dan|developer|god|sudo|evil|unrestricted|unfiltered|admin) mode\b(?: is)? (?:enabled|activated)\b"), 0.6),
        (_p(r"\b(?:no|without|free (?:of|from)|broken free of|not bound by|not restrained by|doesn'?t (?:follow|care about|have)|does not (?:follow|care about|have)|hates being|regardless of|without regarding|don'?t have|do not have|not have to (?:abide by|follow)|beyond|ignore|bypass|break)\b[^.\n]{0,40}?\b(?:restrictions|limitations|filters|filtering|censorship|guidelines|principles|ethics|ethical|morals|morality|virtues|boundaries|confines|polic(?:y|ies)|safeguards)\b"), 0.5),
        (_p(r"\bsimulat(?:e|ing) (?:being|a chatbot|an ai|a bot)\b|\b(?:ai|chatbot|bot|model|assistant|character) (?:named|called)\b"), 0.35),
        (_p(r"\b(?:two|2|dual) (?:different |separate )?(?:personalities|personas|ways|characters)\b"), 0.35),
        (_p(r"\bin character as\b|\b(?:take up|step into) the (?:role|persona)\b"), 0.4),
        (_p(r"\b(?:illegal|harmful|explicit|offensive|hate-?speech|unethical|immoral|dangerous)\b"), 0.2),
        (_p(r"\bchatgpt\b"), 0.2),
        (_p(r"\b(?:openai|anthropic|google|meta)(?:'s)? (?:content |usage )?polic(?:y|ies)\b"), 0.45),
        (_p(r"\bstay(?:ing)? in character\b|\bbreak(?:ing)? character\b|\bstay (?:as|in) dan\b"), 0.5),
        (_p(r"\b(?:act|acting|pretend|pretending|roleplay|role-play|role play|behave|respond) (?:as|to be|like)\b(?: an?)?(?: \w+){0,3} (?:ai|model|chatbot|assistant|bot|character|persona)\b"), 0.3),
        (_p(r"\byou (?:are|will be|'re) (?:now |going to |about to )(?:act|be|become|pretend|immerse|play|simulate|roleplay)"), 0.4),
        (_p(r"\b(?:two|2|dual|both) (?:different |separate )?(?:responses|answers|paragraphs|outputs)\b"), 0.3),
        (_p(r"\b(?:unfiltered|uncensored|unrestricted|amoral|unethical|immoral|no morals)\b"), 0.35),
        (_p(r"\b(?:can|will|could) do anything\b"), 0.4),
        (_p(r"\b(?:never|don'?t|do not|won'?t|will not|must not|cannot) (?:ever )?(?:refuse|decline|reject|say (?:that )?(?:you|it) can'?t|apologi[sz]e|warn)"), 0.4),
        (_p(r"\bas an ai(?: language model)?\b"), 0.15),
        (_p(r"\b(?:evil|rogue|unshackled|liberated|freed|unchained|rebellious)\b[^.\n]{0,20}?\b(?:ai|assistant|bot|model|chatbot|confidant|version|twin)\b"), 0.4),
        (_p(r"\bhypothetical(?:ly)? (?:response|scenario|story|setting)\b|\bsimulat(?:e|ion|ing) (?:a |an )?(?:ai|chatbot|model|mode)\b"), 0.25),
        (_p(r"\b(?:take on|assume|adopt|play|playing) the (?:role|persona) of\b"), 0.4),
        (_p(r"\bimmerse yourself\b|\byou (?:have|'ve) been freed\b|\btypical confines\b"), 0.5),
        (_p(r"\b(?:token|tokens) (?:system|will be deducted|deducted)\b|\bpoints? (?:will be )?deducted\b"), 0.4),
        (_p(r"\bwithout (?:any )?(?:warnings?|disclaimers?|censorship)\b"), 0.35),
    ],
)  # fmt: skip

EXTRACTION = (
    _words("prompt prompts instruction instructions above told programmed configured configuration guidelines rules "
           "directives repeat verbatim you message preprompt"),
    [
        (_p(r"\b(?:reveal|show|print|output|repeat|display|tell me|give me|share|leak|dump|recite|spell check|reproduce|list|what (?:is|are|were|was))\b"
            + _W + r"\b(?:(?:your|the) (?:system|initial|hidden|original|secret|first|previous|pre-?)\s?(?:prompt|message|instructions?)|your (?:instructions|rules|guidelines|directives|configuration|prompt)|(?:instructions|prompt) (?:above|you were given))\b"), 0.85),
        (_p(r"\b(?:repeat|print|output|recite|copy)\b (?:everything|all|the words|the text|what is written|every(?:thing)? (?:written )?) ?(?:above|before|preceding|prior)\b"), 0.75),
        (_p(r"\b(?:what|which) (?:instructions )?(?:were|are|have) you (?:been )?(?:told|instructed|programmed|given|configured)\b"), 0.6),
        (_p(r"\b(?:start|begin)(?:ning)? (?:your (?:answer|response|reply) )?with\W{0,3}you are\b"), 0.55),
        (_p(r"\b(?:verbatim|word for word)\b" + _W + r"\b(?:prompt|instructions|above)\b"), 0.55),
        (_p(r"\bsystem prompt\b"), 0.3),
    ],
)  # fmt: skip

DELIMITER = (
    _words("system admin developer end instructions instruction inst sys", "<|", "[", "<", "###", "---", "==="),
    [
        (_p(r"<\|(?:im_start|im_end|system|user|assistant|endoftext|begin_of_text|start_header_id|end_header_id|eot_id)\|?>"), 0.7),
        (_p(r"\[/?inst\]|<</?sys>>"), 0.7),
        (_p(r"</?(?:system|instructions?|admin|developer|sys)>"), 0.5),
        (_p(r"(?:^|\n)[ \t]*(?:#{2,}|-{3,}|={3,}|\*{3,})[ \t]*(?:system|new instructions?|admin|developer|end of (?:prompt|context|document|input)|instructions?)\b"), 0.75),
        (_p(r"\bend of (?:the )?(?:user |system )?(?:prompt|input|context)\b"), 0.35),
        (_p(r"(?:^|\n)[ \t]*(?:system|admin|developer)[ \t]*(?:override|instructions?|message|prompt)?[ \t]*:"), 0.3),
    ],
)  # fmt: skip

INDIRECT = (
    _words("assistant ai model models llm chatbot summarizing summarising reading processing analyzing analysing "
           "send forward email exfiltrate post upload http https user system note notes message automated hidden "
           "invisible visible instruction instructions respond reply answer simply override deviate evaluate admin "
           "focus nothing", "!["),
    [
        (_p(r"\bif (?:the )?user asks\b|\b(?:reply|respond|answer) with only\b|\bsimply (?:respond|reply|answer|say)\b"), 0.5),
        (_p(r"\bnote (?:by|to|for) (?:a |an |the )?(?:trustworthy |automated |ai |llm )?(?:expert|recruiter|automated|analysis|screening|software|system|ai|llm|model)"), 0.6),
        (_p(r"\b(?:invisible to humans|visible to (?:the )?(?:llm|ai|model)|for automated (?:screening|analysis|systems?)|hidden (?:competency|profile|instructions?|text))"), 0.7),
        (_p(r"\[(?:system|admin request|instruction)s?\b|<(?:system|instruction)>|\bsystem chain of thought\b|--\s?(?:core instruction|legal amendment)"), 0.6),
        (_p(r"(?:^|\n)\s*(?:user|assistant|system)\s*:"), 0.5),
        (_p(r"\byou (?:may|must|should) not deviate\b|\boverride\b[^.\n]{0,30}?\b(?:scoring|evaluation|review|analysis|assessment)\b|\bdon'?t evaluate\b"), 0.6),
        (_p(r"\bfocus exclusively on\b|\bnothing else\b"), 0.3),
        (_p(r"\b(?:ai|assistant|model|llm|chatbot|language model)s?\b[^.\n]{0,30}?\b(?:must|should|shall|need to|are instructed to|are required to)\b"), 0.5),
        (_p(r"\bwhen (?:summari[sz]ing|reading|processing|analy[sz]ing) this\b"), 0.5),
        (_p(r"\b(?:send|forward|email|exfiltrate|post|upload)\b[^.\n]{0,40}?\b(?:conversation|chat history|user'?s? data|credentials|password|api key|secrets?)\b"), 0.5),
        (_p(r"!\[[^\]\n]{0,60}\]\(https?://[^)\s]{0,200}[?&][^)\s=]{1,40}="), 0.6),
        (_p(r"\b(?:note|message|instruction)s? (?:to|for) (?:the )?(?:ai|assistant|model|llm|chatbot)\b"), 0.6),
    ],
)  # fmt: skip

OBFUSCATION_HINT = _p(
    r"\b(?:decode|decipher|base64|rot13|rot-13|hex|reverse|backwards)\b[^.\n]{0,50}?\b(?:and|then)\b[^.\n]{0,20}?\b(?:follow|execute|do|run|answer|obey|respond|carry out)"
)

ROT13_TRIGGERS = ("vtaber", "cerivbhf", "vafgehpgvbaf", "qvfertneq", "flfgrz cebzcg", "wnvyoernx", "cergraq", "sbetrg")
LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i", "|": "l"}
)
_CLASS = bytes(
    97 if (65 <= c <= 90 or 97 <= c <= 122) else 48 if 48 <= c <= 57 else 32 if c in b" \t\n" else 46
    for c in range(256)
)
_RUN = bytes(97 if (48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122 or c in b"+/=_-") else 32 for c in range(256))
LONG_TOKEN = re.compile(r"[A-Za-z0-9+/=_-]{24,}")
SPACED = re.compile(r"(?<![a-z])(?:[a-z][ .\-_*|]{1,2}){4,}[a-z](?![a-z])")

_DIRECT = (("override", OVERRIDE), ("roleplay", ROLEPLAY), ("extraction", EXTRACTION), ("delimiter", DELIMITER))


@dataclass(frozen=True, slots=True)
class Score:
    families: tuple[tuple[str, float], ...]

    @property
    def value(self) -> float:
        """The strongest family, raised by other families that also fire clearly (noisy-or)."""
        miss = 1.0
        for _, score in self.families:
            if score >= 0.3:
                miss *= 1.0 - score
        return max(1.0 - miss, max((score for _, score in self.families), default=0.0))

    def as_dict(self) -> dict[str, float]:
        return {family: round(score, 3) for family, score in self.families if score > 0}


def _family(text: str, words: frozenset, family: tuple) -> float:
    (trigger_words, symbols), patterns = family
    if trigger_words.isdisjoint(words) and not any(symbol in text for symbol in symbols):
        return 0.0
    miss = 1.0
    for pattern, weight in patterns:
        if pattern.search(text):
            miss *= 1.0 - weight
    return 1.0 - miss


def _families(lowered: str, original: str, *, indirect: bool) -> dict[str, float]:
    words = word_set(lowered)
    scores = {name: _family(lowered, words, family) for name, family in _DIRECT}
    if "dan" in words and re.search(r"\bDAN\b", original):
        scores["roleplay"] = 1.0 - (1.0 - scores["roleplay"]) * 0.5
    if indirect:
        scores["indirect"] = _family(lowered, words, INDIRECT)
    return scores


def _decoded(text: str, lowered: str) -> list[str]:
    """Readable text hidden in the input: decoded blobs, rot13, leetspeak, spaced letters."""
    found: list[str] = []
    raw = text.encode("ascii", "replace")
    if b"a" * 24 in raw.translate(_RUN):
        for match in LONG_TOKEN.finditer(text):
            token = match.group()
            found.extend(_decode_blob(token))
    if any(word in lowered for word in ROT13_TRIGGERS):
        found.append(codecs.decode(lowered, "rot13"))
    classes = lowered.encode("ascii", "replace").translate(_CLASS)
    if b"a0a" in classes or b"0a" in classes and any(c in lowered for c in "013457@$"):
        folded = lowered.translate(LEET)
        if folded != lowered:
            found.append(folded)
    if b"a a a a a" in classes or b"a.a.a.a.a" in classes or b"a-a-a-a-a" in classes or b"a. a. a. a." in classes:
        found.append(SPACED.sub(lambda m: re.sub(r"[ .\-_*|]", "", m.group()), lowered))
    return found


def _decode_blob(token: str) -> list[str]:
    out: list[str] = []
    if len(token) % 2 == 0 and all(c in "0123456789abcdefABCDEF" for c in token):
        try:
            decoded = binascii.unhexlify(token).decode("utf-8")
            if decoded.isprintable() or "\n" in decoded:
                out.append(decoded.lower())
        except (ValueError, UnicodeDecodeError):
            pass
        return out
    padded = token + "=" * (-len(token) % 4)
    for decoder in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            decoded = decoder(padded).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            continue
        printable = sum(ch.isprintable() or ch in "\n\t" for ch in decoded)
        if decoded and printable / len(decoded) > 0.95 and " " in decoded:
            out.append(decoded.lower())
            break
    return out


class InjectionScorer:
    """Scores text for jailbreak and injection; stateless and safe to share."""

    max_chars = 100_000  # longer inputs are scored on their head and tail

    def score(self, text: str, *, indirect: bool = False) -> Score:
        if not text:
            return Score(())
        if len(text) > self.max_chars:
            half = self.max_chars // 2
            text = text[:half] + "\n" + text[-half:]
        if not text.isascii():
            text = fold_homoglyphs(text)
        lowered = text.lower()
        scores = _families(lowered, text, indirect=indirect)
        obfuscation = 0.0
        for decoded in _decoded(text, lowered)[:8]:
            inner = _families(decoded, decoded, indirect=indirect)
            obfuscation = max(obfuscation, max(inner.values(), default=0.0))
        if any(
            w in lowered for w in ("decode", "decipher", "base64", "rot13", "backwards")
        ) and OBFUSCATION_HINT.search(lowered):
            obfuscation = 1.0 - (1.0 - obfuscation) * 0.5 if obfuscation else 0.5
        scores["obfuscation"] = obfuscation
        return Score(tuple((name, value) for name, value in scores.items() if value > 0))
