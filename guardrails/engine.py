"""One organization's policy, compiled for the hot path, and the text scan it runs.

`CompiledPolicy` is immutable: the detector with only the entities the policy
acts on, one alternation per word list, the injection thresholds. `scan_text`
runs everything on one piece of text and returns what was found; `Transformer`
applies the actions through presidio-anonymizer's operators.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from presidio_anonymizer import AnonymizerEngine
from presidio_anonymizer.entities import OperatorConfig, RecognizerResult

from guardrails.detectors import PII_ENTITIES, SECRET_ENTITIES, Detector, Span
from guardrails.injection import InjectionScorer
from guardrails.normalize import fold_homoglyphs, normalize
from guardrails.patterns import CustomRecognizer, custom_pattern_compile, pattern_matches
from guardrails.policy import TOPICS, entity_actions, rule_name, rules_regex
from guardrails.vault import ConversationMemory, Vault

STRENGTH = {"none": 0, "flag": 1, "tokenize": 2, "hash": 3, "mask": 4, "redact": 5, "block": 6}
TRANSFORMS = ("tokenize", "mask", "redact", "hash")
REDACTED = "[REDACTED]"
RULE_ENTITY = "CONTENT_RULE"


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    action: str


@dataclass(frozen=True, slots=True)
class RuleSet:
    """Deny rules (or topics): one alternation for words and phrases, regexes apart."""

    words: re.Pattern | None = None
    by_word: Mapping[str, Rule] = field(default_factory=dict)
    regexes: tuple[tuple[Any, Rule], ...] = ()  # regex.Pattern

    @classmethod
    def build(cls, rules: list[dict[str, Any]], section: str) -> RuleSet:
        by_word = {}
        regexes = []
        for rule in rules:
            named = Rule(rule_name(rule, section), rule.get("action", "block"))
            if rule["match"] == "regex":
                regexes.append((custom_pattern_compile(rule["value"]), named))
            else:
                by_word.setdefault(rule["value"].strip().lower(), named)
        return cls(rules_regex(rules), by_word, tuple(regexes))

    def __bool__(self) -> bool:
        return self.words is not None or bool(self.regexes)

    def find(self, lowered: str, text: str) -> list[tuple[int, int, Rule]]:
        hits = []
        if self.words is not None:
            for match in self.words.finditer(lowered):
                hits.append((match.start(), match.end(), self.by_word[match.group()]))
        for pattern, rule in self.regexes:
            for match in pattern_matches(pattern, text):
                if match.end() > match.start():
                    hits.append((match.start(), match.end(), rule))
        return hits


def _topics(topics: list[dict[str, Any]]) -> RuleSet:
    rules = []
    for topic in topics:
        for word in topic.get("keywords") or TOPICS[topic["topic"]]:
            rules.append(
                {"match": "phrase", "value": word.strip(), "action": topic["action"], "name": f"topic:{topic['topic']}"}
            )
    return RuleSet.build(rules, "topic")


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    actions: Mapping[str, str]
    detector: Detector
    deny: RuleSet
    allow: RuleSet
    topics: RuleSet
    max_chars: int | None
    output_secrets: str
    output_new_pii: str
    output_deny: RuleSet
    threshold: float
    injection_action: str
    indirect_threshold: float
    indirect_action: str
    hash_salt: bytes
    document: Mapping[str, Any]  # the merged policy, for display
    output_detector: Detector | None = None  # secrets and PII in answers, when an output rule looks for them
    inert: bool = False  # nothing to look for in a request: no entity, rule, topic, size limit or injection check

    @classmethod
    def build(
        cls, merged: Mapping[str, Any], data_class: str, custom: tuple[CustomRecognizer, ...], hash_salt: bytes
    ) -> CompiledPolicy:
        actions = entity_actions(merged, data_class)
        for recognizer in custom:
            actions.setdefault(recognizer.entity, "tokenize")
        live = {entity: action for entity, action in actions.items() if action != "off"}
        detector = Detector(
            [e for e in live if e in PII_ENTITIES or e in SECRET_ENTITIES],
            [r for r in custom if r.entity in live],
        )
        output = merged["output"]
        injection = merged["injection"]
        watch = []
        if output["secrets"] != "off":
            watch.extend(SECRET_ENTITIES)
        if output["new_pii"] != "off":
            watch.extend(PII_ENTITIES)
        output_detector = Detector(watch, custom if output["new_pii"] != "off" else ()) if watch else None
        deny = RuleSet.build(merged["input"]["deny"], "input.deny")
        topics = _topics(merged["input"]["topics"])
        inert = (
            not detector.entities
            and not detector.custom
            and not deny
            and not topics
            and merged["input"]["max_prompt_chars"] is None
            and injection["action"] == "off"
            and injection["indirect_action"] == "off"
        )
        return cls(
            output_detector=output_detector,
            inert=inert,
            actions=live,
            detector=detector,
            deny=deny,
            allow=RuleSet.build([{**r, "action": "allow"} for r in merged["input"]["allow"]], "input.allow"),
            topics=topics,
            max_chars=merged["input"]["max_prompt_chars"],
            output_secrets=output["secrets"],
            output_new_pii=output["new_pii"],
            output_deny=RuleSet.build(output["deny"], "output.deny"),
            threshold=injection["threshold"],
            injection_action=injection["action"],
            indirect_threshold=injection["indirect_threshold"],
            indirect_action=injection["indirect_action"],
            hash_salt=hash_salt,
            document=merged,
        )


@dataclass(slots=True)
class TextScan:
    """What one piece of text holds (spans over the original text)."""

    spans: list[Span]
    canon: list[str]  # the normalized value of each span, for stable placeholders
    rules: list[tuple[int, int, Rule]]


def canonical(entity: str, value: str) -> str:
    value = normalize(value).text
    return value.lower() if entity == "EMAIL" else value


def value_digest(entity: str, canon: str) -> bytes:
    return hashlib.blake2b(f"{entity}\x00{canon}".encode(), digest_size=12).digest()


def _overlaps(start: int, end: int, ranges: list[tuple[int, int]]) -> bool:
    return any(s < end and start < e for s, e in ranges)


def scan_text(policy: CompiledPolicy, text: str, *, rules: bool = True) -> TextScan:
    norm = normalize(text)
    found = policy.detector.find(norm.text)
    hits: list[tuple[int, int, Rule]] = []
    allowed: list[tuple[int, int]] = []
    lowered = ""
    if policy.allow or (rules and (policy.deny or policy.topics)):
        lowered = fold_homoglyphs(norm.text).lower() if not norm.text.isascii() else norm.text.lower()
    if policy.allow:
        allowed = [(s, e) for s, e, _ in policy.allow.find(lowered, norm.text)]
    if rules:
        for ruleset in (policy.deny, policy.topics):
            if ruleset:
                hits.extend(h for h in ruleset.find(lowered, norm.text) if not _overlaps(h[0], h[1], allowed))
    spans = []
    canon = []
    for span in found:
        if allowed and _overlaps(span.start, span.end, allowed):
            continue
        start, end = norm.span(span.start, span.end)
        spans.append(Span(start, end, span.entity, span.score))
        value = norm.text[span.start : span.end]
        canon.append(value.lower() if span.entity == "EMAIL" else value)
    mapped_hits = [(*norm.span(s, e), rule) for s, e, rule in hits]
    return TextScan(spans, canon, mapped_hits)


class Transformer:
    """Applies entity actions to one text with presidio-anonymizer's operators."""

    def __init__(self) -> None:
        self.engine = AnonymizerEngine()

    def apply(
        self,
        policy: CompiledPolicy,
        text: str,
        scan: TextScan,
        vault: Vault,
        memory: ConversationMemory | None,
        redact_rules: list[tuple[int, int, Rule]],
    ) -> str:
        results: list[RecognizerResult] = []
        operators: dict[str, OperatorConfig] = {}
        rule_ranges = [(s, e) for s, e, _ in redact_rules]
        tokens: dict[str, dict[str, str]] = {}
        for span, canon in zip(scan.spans, scan.canon, strict=True):
            action = policy.actions.get(span.entity, "flag")
            if action not in TRANSFORMS or _overlaps(span.start, span.end, rule_ranges):
                continue
            results.append(RecognizerResult(span.entity, span.start, span.end, span.score))
            if action == "tokenize":
                original = text[span.start : span.end]
                tokens.setdefault(span.entity, {})[original] = vault.token(span.entity, canon, original, memory)
            if span.entity not in operators:
                operators[span.entity] = self._operator(action, policy, tokens.setdefault(span.entity, {}))
        for start, end, _ in redact_rules:
            results.append(RecognizerResult(RULE_ENTITY, start, end, 1.0))
            operators[RULE_ENTITY] = OperatorConfig("replace", {"new_value": REDACTED})
        if not results:
            return text
        return self.engine.anonymize(text=text, analyzer_results=results, operators=operators).text

    @staticmethod
    def _operator(action: str, policy: CompiledPolicy, tokens: dict[str, str]) -> OperatorConfig:
        if action == "tokenize":
            # presidio hands a custom operator the value only: placeholders are looked up by value.
            return OperatorConfig("custom", {"lambda": lambda value: tokens.get(value, value)})
        if action == "mask":
            return OperatorConfig("mask", {"masking_char": "*", "chars_to_mask": 1_000, "from_end": False})
        if action == "hash":
            return OperatorConfig("hash", {"hash_type": "sha256", "salt": policy.hash_salt})
        return OperatorConfig("replace", {"new_value": REDACTED})


class Scorers:
    """The stateless detectors a `Guard` shares across requests."""

    def __init__(self) -> None:
        self.injection = InjectionScorer()
        self.transformer = Transformer()
