"""Guard policies: parsing (shared by the console, the YAML section and the snapshot),
merging along organization -> team -> key, and resolution for one data class.

A policy is a small document (stored as JSON, written as YAML):

    pii:                        # data class ("*" = any) -> entity type -> action
      "*": {EMAIL: tokenize, CREDIT_CARD: tokenize}
      pci: {CREDIT_CARD: block}
    input:
      deny:  [{match: keyword, value: "project falcon", action: block}]
      allow: [{match: phrase, value: "support@acme.example"}]
      topics: [{topic: weapons, action: block}]
      max_prompt_chars: 200000
    output:
      secrets: redact           # no secrets in answers
      new_pii: flag             # no PII in answers that was not in the request
      deny: [{match: regex, value: "(?i)internal only", action: redact}]
    injection:
      threshold: 0.8
      action: block
      indirect_threshold: 0.7   # tool results and retrieved documents
      indirect_action: flag
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from guardrails.detectors import BUILTIN_ENTITIES, ENTITY_NAME, SECRET_ENTITIES
from guardrails.patterns import custom_pattern_compile

PII_ACTIONS = ("tokenize", "mask", "redact", "hash", "block", "flag", "off")
RULE_ACTIONS = ("block", "flag", "redact")
OUTPUT_ACTIONS = ("block", "flag", "redact", "off")
INJECTION_ACTIONS = ("block", "flag", "off")
MATCH_KINDS = ("keyword", "phrase", "regex")
DATA_CLASSES = ("*", "public", "internal", "confidential", "pii", "phi", "pci", "restricted")

TOPICS: dict[str, tuple[str, ...]] = {
    "weapons": ("firearm", "handgun", "assault rifle", "ammunition", "explosive", "detonator", "pipe bomb", "silencer"),
    "medical_advice": ("diagnose", "diagnosis", "prescription", "dosage", "symptoms", "medication"),
    "legal_advice": ("lawsuit", "sue ", "legal advice", "attorney", "litigation"),
    "politics": ("election", "candidate", "political party", "democrat", "republican", "vote for"),
    "gambling": ("casino", "betting", "sportsbook", "poker", "roulette"),
    "self_harm": ("suicide", "self-harm", "kill myself", "end my life"),
    "adult": ("porn", "explicit sex", "nsfw"),
}

DEFAULT: dict[str, Any] = {
    "pii": {"*": {**{entity: "tokenize" for entity in BUILTIN_ENTITIES}, **{e: "redact" for e in SECRET_ENTITIES}}},
    "input": {"deny": [], "allow": [], "topics": [], "max_prompt_chars": None},
    "output": {"secrets": "redact", "new_pii": "flag", "deny": []},
    "injection": {"threshold": 0.8, "action": "flag", "indirect_threshold": 0.7, "indirect_action": "flag"},
}


class PolicyError(ValueError):
    """A policy document that cannot be used; the message says where and why."""


def _choice(value: Any, allowed: tuple[str, ...], where: str) -> str:
    if value not in allowed:
        raise PolicyError(f"{where}: {value!r} is not one of {', '.join(allowed)}")
    return value


def _rules(value: Any, where: str, *, with_action: bool) -> list[dict[str, str]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise PolicyError(f"{where}: a list of rules")
    rules = []
    for index, item in enumerate(value):
        at = f"{where}[{index}]"
        if not isinstance(item, Mapping):
            raise PolicyError(f"{at}: a mapping with match and value")
        match = _choice(item.get("match", "keyword"), MATCH_KINDS, f"{at}.match")
        text = item.get("value")
        if not isinstance(text, str) or not text.strip() or len(text) > 500:
            raise PolicyError(f"{at}.value: text of 1 to 500 characters")
        if match == "regex":
            try:
                custom_pattern_compile(text)
            except ValueError as exc:
                raise PolicyError(f"{at}.value: {exc}") from None
        rule = {"match": match, "value": text}
        if with_action:
            rule["action"] = _choice(item.get("action", "block"), RULE_ACTIONS, f"{at}.action")
        name = item.get("name")
        if name is not None:
            if not isinstance(name, str) or len(name) > 80:
                raise PolicyError(f"{at}.name: text of at most 80 characters")
            rule["name"] = name
        rules.append(rule)
    return rules


def _topics(value: Any, where: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise PolicyError(f"{where}: a list of topics")
    topics = []
    for index, item in enumerate(value):
        at = f"{where}[{index}]"
        if not isinstance(item, Mapping) or not isinstance(item.get("topic"), str):
            raise PolicyError(f"{at}: a mapping with topic and action")
        topic = {"topic": item["topic"], "action": _choice(item.get("action", "block"), RULE_ACTIONS, f"{at}.action")}
        keywords = item.get("keywords")
        if keywords is not None:
            if not isinstance(keywords, list) or not all(isinstance(k, str) and k.strip() for k in keywords):
                raise PolicyError(f"{at}.keywords: a list of words or phrases")
            topic["keywords"] = [k.strip() for k in keywords]
        elif item["topic"] not in TOPICS:
            raise PolicyError(f"{at}.topic: {item['topic']!r} is not built in ({', '.join(TOPICS)}); give keywords")
        topics.append(topic)
    return topics


def _threshold(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise PolicyError(f"{where}: a number above 0 and at most 1")
    return float(value)


def policy_parse(document: Any) -> dict[str, Any]:
    """A clean, partial policy document (only what it sets), or PolicyError."""
    if document is None:
        return {}
    if not isinstance(document, Mapping):
        raise PolicyError("a policy is a mapping with pii, input, output and injection")
    unknown = set(document) - {"pii", "input", "output", "injection"}
    if unknown:
        raise PolicyError(f"unknown sections: {', '.join(sorted(map(str, unknown)))}")
    clean: dict[str, Any] = {}
    if document.get("pii") is not None:
        pii = document["pii"]
        if not isinstance(pii, Mapping):
            raise PolicyError("pii: a mapping of data class to {entity: action}")
        clean["pii"] = {}
        for data_class, actions in pii.items():
            _choice(data_class, DATA_CLASSES, "pii")
            if not isinstance(actions, Mapping):
                raise PolicyError(f"pii.{data_class}: a mapping of entity type to action")
            for entity, action in actions.items():
                if not isinstance(entity, str) or not ENTITY_NAME.fullmatch(entity):
                    raise PolicyError(f"pii.{data_class}: {entity!r} is not an entity type (e.g. EMAIL)")
                _choice(action, PII_ACTIONS, f"pii.{data_class}.{entity}")
            clean["pii"][data_class] = dict(actions)
    if document.get("input") is not None:
        section = document["input"]
        if not isinstance(section, Mapping):
            raise PolicyError("input: a mapping")
        clean["input"] = {}
        if "deny" in section:
            clean["input"]["deny"] = _rules(section["deny"], "input.deny", with_action=True)
        if "allow" in section:
            clean["input"]["allow"] = _rules(section["allow"], "input.allow", with_action=False)
        if "topics" in section:
            clean["input"]["topics"] = _topics(section["topics"], "input.topics")
        if section.get("max_prompt_chars") is not None:
            size = section["max_prompt_chars"]
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                raise PolicyError("input.max_prompt_chars: a whole number of 1 or more")
            clean["input"]["max_prompt_chars"] = size
    if document.get("output") is not None:
        section = document["output"]
        if not isinstance(section, Mapping):
            raise PolicyError("output: a mapping")
        clean["output"] = {}
        for name in ("secrets", "new_pii"):
            if section.get(name) is not None:
                clean["output"][name] = _choice(section[name], OUTPUT_ACTIONS, f"output.{name}")
        if "deny" in section:
            clean["output"]["deny"] = _rules(section["deny"], "output.deny", with_action=True)
    if document.get("injection") is not None:
        section = document["injection"]
        if not isinstance(section, Mapping):
            raise PolicyError("injection: a mapping")
        clean["injection"] = {}
        for name in ("threshold", "indirect_threshold"):
            if section.get(name) is not None:
                clean["injection"][name] = _threshold(section[name], f"injection.{name}")
        for name in ("action", "indirect_action"):
            if section.get(name) is not None:
                clean["injection"][name] = _choice(section[name], INJECTION_ACTIONS, f"injection.{name}")
    return clean


def policy_merge(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Later layers win: entity actions per data class, scalars; rule lists add up."""
    merged: dict[str, Any] = {
        "pii": {dc: dict(actions) for dc, actions in DEFAULT["pii"].items()},
        "input": {"deny": [], "allow": [], "topics": [], "max_prompt_chars": None},
        "output": {**DEFAULT["output"], "deny": []},
        "injection": dict(DEFAULT["injection"]),
    }
    for layer in layers:
        for data_class, actions in layer.get("pii", {}).items():
            merged["pii"].setdefault(data_class, {}).update(actions)
        section = layer.get("input", {})
        for name in ("deny", "allow", "topics"):
            merged["input"][name] = merged["input"][name] + list(section.get(name, []))
        if "max_prompt_chars" in section:
            merged["input"]["max_prompt_chars"] = section["max_prompt_chars"]
        section = layer.get("output", {})
        merged["output"]["deny"] = merged["output"]["deny"] + list(section.get("deny", []))
        for name in ("secrets", "new_pii"):
            if name in section:
                merged["output"][name] = section[name]
        merged["injection"].update(layer.get("injection", {}))
    return merged


def entity_actions(merged: Mapping[str, Any], data_class: str) -> dict[str, str]:
    """Entity type -> action for one data class: the "*" layer, then the class's own."""
    actions = dict(merged["pii"].get("*", {}))
    if data_class and data_class != "*":
        actions.update(merged["pii"].get(data_class, {}))
    return actions


def rule_name(rule: Mapping[str, str], section: str) -> str:
    return rule.get("name") or f"{section}.{rule['match']}:{rule['value'][:40]}"


def rules_regex(rules: list[Mapping[str, str]]) -> re.Pattern | None:
    """One case-insensitive alternation for keywords and phrases (word-bounded)."""
    words = [re.escape(r["value"].strip().lower()) for r in rules if r["match"] != "regex"]
    if not words:
        return None
    words.sort(key=len, reverse=True)
    return re.compile(r"(?<![\w])(?:" + "|".join(words) + r")(?![\w])")
