"""Content-based routing rules, compiled once per snapshot and matched per request.

A rule matches when every condition it sets holds (unset conditions match
anything); rules are tried in order and the first match names the route. Cheap
conditions are checked before the token estimate and the regular expressions,
and facts about the request are computed only when a rule asks for them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from re import _constants as re_constants  # noqa: PLC2701 - the parser is how a literal is found safely
from re import _parser as re_parser  # noqa: PLC2701
from typing import Any

from providers.tokens import estimate_prompt_tokens


class RequestFacts:
    """What rules may ask about one request, each fact computed on first use."""

    __slots__ = (
        "body",
        "requested",
        "tags",
        "workflow",
        "key_prefix",
        "key_name",
        "team_id",
        "data_class",
        "_last_user",
        "_lower",
        "_tokens",
    )

    def __init__(
        self,
        *,
        body: Mapping[str, Any],
        requested: str,
        tags: list[str] | tuple[str, ...] = (),
        workflow: str = "",
        key_prefix: str = "",
        key_name: str = "",
        team_id: int | None = None,
        data_class: str = "",
    ) -> None:
        self.body = body
        self.requested = requested
        self.tags = tags
        self.workflow = workflow
        self.key_prefix = key_prefix
        self.key_name = key_name
        self.team_id = team_id
        self.data_class = data_class
        self._last_user: str | None = None
        self._lower: str | None = None
        self._tokens: int | None = None

    @property
    def last_user_text(self) -> str:
        if self._last_user is None:
            self._last_user = last_user_text(self.body.get("messages"))
        return self._last_user

    @property
    def last_user_ascii(self) -> bool:
        return self.last_user_text.isascii()

    @property
    def last_user_lower(self) -> str:
        if self._lower is None:
            self._lower = self.last_user_text.lower()
        return self._lower

    @property
    def prompt_tokens(self) -> int:
        if self._tokens is None:
            messages = self.body.get("messages")
            self._tokens = estimate_prompt_tokens(messages) if isinstance(messages, list) else 0
        return self._tokens

    @property
    def has_tools(self) -> bool:
        return bool(self.body.get("tools") or self.body.get("functions"))

    @property
    def has_images(self) -> bool:
        messages = self.body.get("messages")
        if not isinstance(messages, list):
            return False
        for message in messages:
            content = message.get("content") if isinstance(message, Mapping) else None
            if isinstance(content, list):
                for part in content:
                    if isinstance(part, Mapping) and part.get("type") in ("image_url", "input_image", "image"):
                        return True
        return False

    @property
    def has_response_format(self) -> bool:
        fmt = self.body.get("response_format")
        return isinstance(fmt, Mapping) and fmt.get("type") not in (None, "text")


def last_user_text(messages: Any) -> str:
    if not isinstance(messages, list):
        return ""
    for message in reversed(messages):
        if isinstance(message, Mapping) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return "\n".join(
                    part["text"] for part in content if isinstance(part, Mapping) and isinstance(part.get("text"), str)
                )
            return ""
    return ""


@dataclass(frozen=True, slots=True)
class CompiledRule:
    name: str
    route: str
    models: frozenset[str]
    pattern: re.Pattern[str] | None
    pattern_literal: str  # a substring any match must contain ("" when none is known)
    pattern_folds: bool  # the pattern ignores case: look for the literal in lower case
    keywords: re.Pattern[str] | None
    keyword_list: tuple[str, ...]  # lower case; a cheap substring test before the word-boundary check
    min_tokens: int
    max_tokens: int
    tools: bool | None
    images: bool | None
    response_format: bool | None
    tags: frozenset[str]
    workflows: frozenset[str]
    teams: frozenset[int]
    team_names: frozenset[str]
    keys: frozenset[str]
    data_classes: frozenset[str]

    def matches(self, facts: RequestFacts) -> bool:
        if self.models and facts.requested not in self.models:
            return False
        if self.tags and self.tags.isdisjoint(facts.tags):
            return False
        if self.workflows and facts.workflow not in self.workflows:
            return False
        if self.team_names and facts.team_id not in self.teams:
            return False
        if self.keys and facts.key_prefix not in self.keys and facts.key_name not in self.keys:
            return False
        if self.data_classes and facts.data_class not in self.data_classes:
            return False
        if self.tools is not None and facts.has_tools != self.tools:
            return False
        if self.images is not None and facts.has_images != self.images:
            return False
        if self.response_format is not None and facts.has_response_format != self.response_format:
            return False
        if self.min_tokens and facts.prompt_tokens < self.min_tokens:
            return False
        if self.max_tokens and facts.prompt_tokens > self.max_tokens:
            return False
        # Substring tests first; under case folding only for ASCII text, where lower()
        # agrees with the regex engine (it also folds a few non-ASCII letters onto ASCII).
        if self.keywords is not None:
            if facts.last_user_ascii and not any(k in facts.last_user_lower for k in self.keyword_list):
                return False
            if self.keywords.search(facts.last_user_text) is None:
                return False
        if self.pattern is not None:
            literal = self.pattern_literal
            if literal:
                if not self.pattern_folds:
                    if literal not in facts.last_user_text:
                        return False
                elif facts.last_user_ascii and literal not in facts.last_user_lower:
                    return False
            if self.pattern.search(facts.last_user_text) is None:
                return False
        return True

    def describe(self) -> list[str]:
        """The conditions in words (dry run, console)."""
        parts = []
        if self.models:
            parts.append("model is " + " or ".join(sorted(self.models)))
        if self.tags:
            parts.append("tag " + " or ".join(sorted(self.tags)))
        if self.workflows:
            parts.append("workflow " + " or ".join(sorted(self.workflows)))
        if self.team_names:
            parts.append("team " + " or ".join(sorted(self.team_names)))
        if self.keys:
            parts.append("key " + " or ".join(sorted(self.keys)))
        if self.data_classes:
            parts.append("classified " + " or ".join(sorted(self.data_classes)))
        for flag, label in ((self.tools, "tools"), (self.images, "images"), (self.response_format, "response_format")):
            if flag is not None:
                parts.append(f"{'with' if flag else 'without'} {label}")
        if self.min_tokens:
            parts.append(f">= {self.min_tokens} prompt tokens")
        if self.max_tokens:
            parts.append(f"<= {self.max_tokens} prompt tokens")
        if self.keywords is not None:
            parts.append(f"keywords /{self.keywords.pattern}/")
        if self.pattern is not None:
            parts.append(f"matches /{self.pattern.pattern}/")
        return parts or ["always"]


def required_literal(pattern: re.Pattern[str]) -> str:
    """The longest run of plain characters at the top level of a pattern: every match
    contains it, so text without it cannot match (a substring test costs far less
    than a regex scan). "" when the pattern has no such run of 3+ characters."""
    try:
        parsed = re_parser.parse(pattern.pattern, pattern.flags)
    except (re.error, RecursionError, ValueError):
        return ""
    best, run = "", []
    for op, value in list(parsed) + [(None, None)]:
        if op is re_constants.LITERAL:
            run.append(chr(value))
            continue
        if len(run) > len(best):
            best = "".join(run)
        run = []
    return best if len(best) >= 3 else ""


def rule_compile(rule: Mapping[str, Any], *, team_ids: Mapping[str, int]) -> CompiledRule:
    keywords = None
    if rule["keywords"]:
        alternatives = "|".join(re.escape(k) for k in sorted(rule["keywords"], key=len, reverse=True))
        keywords = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)
    pattern = re.compile(rule["pattern"]) if rule["pattern"] else None
    folds = bool(pattern is not None and pattern.flags & re.IGNORECASE)
    literal = required_literal(pattern) if pattern is not None else ""
    return CompiledRule(
        name=rule["name"],
        route=rule["route"],
        models=frozenset(rule["models"]),
        pattern=pattern,
        pattern_literal=literal.lower() if folds else literal,
        pattern_folds=folds,
        keywords=keywords,
        keyword_list=tuple(k.lower() for k in rule["keywords"]),
        min_tokens=rule["min_tokens"],
        max_tokens=rule["max_tokens"],
        tools=rule["tools"],
        images=rule["images"],
        response_format=rule["response_format"],
        tags=frozenset(rule["tags"]),
        workflows=frozenset(rule["workflows"]),
        teams=frozenset(team_ids[name] for name in rule["teams"] if name in team_ids),
        team_names=frozenset(rule["teams"]),
        keys=frozenset(rule["keys"]),
        data_classes=frozenset(rule["data_classes"]),
    )
