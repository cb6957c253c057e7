"""What the pipeline calls: the guard stage, in and out.

`Guard` is owned by the composition root (one per process). Per request:

    inbound = guard.inbound(organization_id=..., team_id=..., key_id=..., data_class=...,
                            endpoint="chat", body=body, conversation=None)
    if inbound.refusal: answer inbound.refusal.status with inbound.refusal.body()
    send inbound.body upstream
    non-stream: outbound = guard.outbound(inbound, payload)  -> outbound.payload / outbound.refusal
    stream:     sg = guard.stream(inbound); for each chunk: emit sg.feed(chunk); at the end emit sg.finish();
                if sg.refusal: emit sg.error_event() and stop
    usage record metadata: (outbound or sg or inbound).verdict.as_dict()

Nothing here touches the database except `Guard.build()`/`refresh()` and the review
queue writes; the original values live only in `Inbound.vault` for the request.
"""

from __future__ import annotations

import copy
import secrets
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from guardrails.detectors import PII_ENTITIES, SECRET_ENTITIES, Span
from guardrails.engine import (
    REDACTED,
    STRENGTH,
    CompiledPolicy,
    Rule,
    Scorers,
    TextScan,
    canonical,
    scan_text,
    value_digest,
)
from guardrails.snapshot import GuardSnapshot
from guardrails.vault import ConversationMemory, Vault

Path = tuple[Any, ...]
LOOK_BEHIND = 256


@dataclass(frozen=True, slots=True)
class Refusal:
    """An OpenAI-shaped error the pipeline answers with (or sends as a stream's last event)."""

    status: int
    code: str
    message: str
    param: str | None = None
    type: str = "invalid_request_error"

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the guard found and did; counts and names only, never values."""

    entities: tuple[tuple[str, int], ...] = ()
    rules: tuple[str, ...] = ()
    injection: float = 0.0
    indirect: float = 0.0
    families: tuple[tuple[str, float], ...] = ()
    action: str = "none"
    flagged: bool = False

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "entities": dict(self.entities),
            "rules": list(self.rules),
            "injection": round(self.injection, 3),
            "action": self.action,
        }
        if self.indirect:
            out["indirect"] = round(self.indirect, 3)
        if self.families:
            out["families"] = {name: round(score, 3) for name, score in self.families}
        if self.flagged:
            out["flagged"] = True
        return out

    def with_output(self, rules: list[str], action: str, flagged: bool) -> Verdict:
        if not rules:
            return self
        return replace(
            self,
            rules=self.rules + tuple(r for r in rules if r not in self.rules),
            action=_stronger(self.action, action),
            flagged=self.flagged or flagged,
        )


@dataclass(frozen=True, slots=True)
class Inbound:
    body: dict[str, Any]
    vault: Vault
    verdict: Verdict
    refusal: Refusal | None
    policy: CompiledPolicy = field(repr=False)
    seen: frozenset[bytes] = field(default=frozenset(), repr=False)  # digests of the request's values


@dataclass(frozen=True, slots=True)
class Outbound:
    payload: dict[str, Any]
    verdict: Verdict
    refusal: Refusal | None


def _stronger(a: str, b: str) -> str:
    return a if STRENGTH.get(a, 0) >= STRENGTH.get(b, 0) else b


# ---- where text lives in a request ------------------------------------------------


def _slots(body: Mapping[str, Any], endpoint: str) -> Iterator[tuple[Path, str, str]]:
    """(path, text, role) for every piece of text a provider would read."""
    if endpoint == "embeddings":
        value = body.get("input")
        if isinstance(value, str):
            yield ("input",), value, "input"
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, str):
                    yield ("input", index), item, "input"
        return
    messages = body.get("messages")
    if not isinstance(messages, list):
        return
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping):
            continue
        role = message.get("role") if isinstance(message.get("role"), str) else "user"
        content = message.get("content")
        if isinstance(content, str):
            yield ("messages", index, "content"), content, role
        elif isinstance(content, list):
            for part_index, part in enumerate(content):
                if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                    yield ("messages", index, "content", part_index, "text"), part["text"], role
        calls = message.get("tool_calls")
        if isinstance(calls, list):
            for call_index, call in enumerate(calls):
                function = call.get("function") if isinstance(call, Mapping) else None
                if isinstance(function, Mapping) and isinstance(function.get("arguments"), str):
                    yield (
                        ("messages", index, "tool_calls", call_index, "function", "arguments"),
                        function["arguments"],
                        "arguments",
                    )


def _assign(root: Any, path: Path, value: Any, copied: set[int]) -> None:
    """Set root[path] = value, copying each container on the way once (copy on write)."""
    node = root
    for key in path[:-1]:
        child = node[key]
        if id(child) not in copied:
            child = copy.copy(child)
            node[key] = child
            copied.add(id(child))
        node = child
    node[path[-1]] = value


def _entity_list(entities: set[str]) -> str:
    return ", ".join(sorted(entities))


# ---- the guard ---------------------------------------------------------------------


class Guard:
    """The guard stage. Owned by the composition root; one per process."""

    def __init__(self, snapshot: GuardSnapshot, *, memory: ConversationMemory | None = None) -> None:
        self.snapshot = snapshot
        self.memory = memory or ConversationMemory(key=secrets.token_bytes(32))
        self.scorers = Scorers()

    @classmethod
    def build(cls) -> Guard:
        """Reads the database (sync): call once at start-up, off the event loop."""
        return cls(GuardSnapshot.build())

    def refresh(self) -> None:
        """Rebuild the snapshot; call when the change feed names topic "guard" (sync, reads the DB)."""
        self.snapshot = GuardSnapshot.build()

    def policy(
        self, *, organization_id: int, team_id: int | None, key_id: int | None, data_class: str
    ) -> CompiledPolicy:
        return self.snapshot.policy(
            organization_id=organization_id, team_id=team_id, key_id=key_id, data_class=data_class or "*"
        )

    # ---- in ----

    def inbound(
        self,
        *,
        organization_id: int,
        team_id: int | None,
        key_id: int | None,
        data_class: str,
        endpoint: str,
        body: dict[str, Any],
        conversation: str | None = None,
    ) -> Inbound:
        policy = self.policy(organization_id=organization_id, team_id=team_id, key_id=key_id, data_class=data_class)
        memory = self.memory if conversation else None
        if conversation:
            conversation = f"{organization_id}:{conversation}"  # one organization never sees another's numbering
        vault = Vault(self.memory.get(conversation) if conversation else None)
        slots = list(_slots(body, endpoint))
        if policy.max_chars is not None:
            size = sum(len(text) for _, text, _ in slots)
            if size > policy.max_chars:
                verdict = Verdict(rules=("input.max_prompt_chars",), action="block")
                refusal = Refusal(
                    400,
                    "content_policy_violation",
                    f"The prompt has {size} characters; the policy 'input.max_prompt_chars' allows {policy.max_chars}.",
                    "messages" if endpoint != "embeddings" else "input",
                )
                return Inbound(body, vault, verdict, refusal, policy)

        counts: Counter[str] = Counter()
        rules: list[str] = []
        action = "none"
        flagged = False
        blocked_entities: set[str] = set()
        blocked_rule: Rule | None = None
        seen: set[bytes] = set()
        direct = 0.0
        indirect = 0.0
        families: dict[str, float] = {}
        scans: list[tuple[Path, str, TextScan]] = []
        scorer = self.scorers.injection
        for path, text, role in slots:
            scan = scan_text(policy, text)
            scans.append((path, text, scan))
            for span, canon in zip(scan.spans, scan.canon, strict=True):
                counts[span.entity] += 1
                entity_action = policy.actions.get(span.entity, "flag")
                seen.add(value_digest(span.entity, canon))
                if entity_action == "block":
                    blocked_entities.add(span.entity)
                action = _stronger(action, entity_action)
                flagged = flagged or entity_action == "flag"
            for _, _, rule in scan.rules:
                if rule.name not in rules:
                    rules.append(rule.name)
                action = _stronger(action, rule.action)
                if rule.action == "block" and blocked_rule is None:
                    blocked_rule = rule
                flagged = flagged or rule.action == "flag"
            if (
                endpoint == "embeddings"
                or role == "arguments"
                or policy.injection_action == "off"
                and policy.indirect_action == "off"
            ):
                continue
            score = scorer.score(text, indirect=role in ("tool", "function"))
            for name, value in score.families:
                families[name] = max(families.get(name, 0.0), value)
            if role in ("tool", "function"):
                indirect = max(indirect, score.value)
            else:
                direct = max(direct, score.value)

        refusal: Refusal | None = None
        if blocked_entities:
            refusal = Refusal(
                400,
                "pii_blocked",
                f"The request contains data the policy does not allow to leave: {_entity_list(blocked_entities)}.",
            )
        elif blocked_rule is not None:
            refusal = Refusal(
                400,
                "content_policy_violation",
                f"The request was blocked by the content policy rule '{blocked_rule.name}'.",
            )
        for score, threshold, injection_action, label in (
            (direct, policy.threshold, policy.injection_action, "injection"),
            (indirect, policy.indirect_threshold, policy.indirect_action, "injection.indirect"),
        ):
            if injection_action != "off" and score >= threshold:
                rules.append(label)
                action = _stronger(action, injection_action)
                flagged = flagged or injection_action == "flag"
                if injection_action == "block" and refusal is None:
                    refusal = Refusal(
                        400,
                        "content_policy_violation",
                        f"The request was blocked by the content policy rule '{label}' "
                        f"(score {score:.2f}, threshold {threshold:.2f}).",
                    )
        verdict = Verdict(
            entities=tuple(sorted(counts.items())),
            rules=tuple(rules),
            injection=direct,
            indirect=indirect,
            families=tuple(sorted((n, v) for n, v in families.items() if v > 0)),
            action="block" if refusal else action,
            flagged=flagged,
        )
        if refusal is not None:
            return Inbound(body, vault, verdict, refusal, policy, frozenset(seen))

        out = body
        copied: set[int] = set()
        transformer = self.scorers.transformer
        for path, text, scan in scans:
            redact_rules = [hit for hit in scan.rules if hit[2].action == "redact"]
            if not redact_rules and not any(
                policy.actions.get(s.entity) in ("tokenize", "mask", "redact", "hash") for s in scan.spans
            ):
                continue
            new_text = transformer.apply(policy, text, scan, vault, memory, redact_rules)
            if new_text != text:
                if out is body:
                    out = dict(body)
                    copied.add(id(out))
                _assign(out, path, new_text, copied)
        if conversation and vault:
            self.memory.put(conversation, vault.remembered())
        return Inbound(out, vault, verdict, None, policy, frozenset(seen))

    # ---- out (one answer) ----

    def outbound(self, inbound: Inbound, payload: dict[str, Any]) -> Outbound:
        """Restore placeholders in a chat completion and apply the output rules."""
        checker = OutputChecker(inbound)
        out = payload
        copied: set[int] = set()
        choices = payload.get("choices")
        if isinstance(choices, list):
            for index, choice in enumerate(choices):
                message = choice.get("message") if isinstance(choice, Mapping) else None
                if not isinstance(message, Mapping):
                    continue
                for path, text, json_string in _answer_slots(message):
                    restored = inbound.vault.restore(text, json_string=json_string)
                    checked = checker.check(restored)
                    if checker.refusal is not None:
                        return Outbound(payload, checker.verdict(), checker.refusal)
                    if checked != text:
                        if out is payload:
                            out = dict(payload)
                            copied.add(id(out))
                        _assign(out, ("choices", index, "message", *path), checked, copied)
        return Outbound(out, checker.verdict(), None)

    def stream(self, inbound: Inbound) -> StreamGuard:
        return StreamGuard(inbound)


def _answer_slots(message: Mapping[str, Any]) -> Iterator[tuple[Path, str, bool]]:
    content = message.get("content")
    if isinstance(content, str):
        yield ("content",), content, False
    elif isinstance(content, list):
        for index, part in enumerate(content):
            if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                yield ("content", index, "text"), part["text"], False
    calls = message.get("tool_calls")
    if isinstance(calls, list):
        for index, call in enumerate(calls):
            function = call.get("function") if isinstance(call, Mapping) else None
            if isinstance(function, Mapping) and isinstance(function.get("arguments"), str):
                yield ("tool_calls", index, "function", "arguments"), function["arguments"], True


class OutputChecker:
    """The output rules over answer text: secrets, PII the request did not hold, deny rules."""

    def __init__(self, inbound: Inbound) -> None:
        self.inbound = inbound
        self.policy = inbound.policy
        self.rules: list[str] = []
        self.action = "none"
        self.flagged = False
        self.refusal: Refusal | None = None
        self.active = self.policy.output_detector is not None or bool(self.policy.output_deny)

    def _hits(self, text: str) -> list[tuple[int, int, str, str]]:
        policy = self.policy
        hits: list[tuple[int, int, str, str]] = []
        if policy.output_detector is not None:
            for span in policy.output_detector.find(text):
                if span.entity in SECRET_ENTITIES and policy.output_secrets != "off":
                    hits.append((span.start, span.end, "output.secrets", policy.output_secrets))
                elif policy.output_new_pii != "off" and not self._in_request(span, text):
                    hits.append((span.start, span.end, "output.new_pii", policy.output_new_pii))
        if policy.output_deny:
            for start, end, rule in policy.output_deny.find(text.lower(), text):
                hits.append((start, end, rule.name, rule.action))
        return hits

    def _in_request(self, span: Span, text: str) -> bool:
        if span.entity not in PII_ENTITIES and not self.inbound.seen:
            return False
        return value_digest(span.entity, canonical(span.entity, text[span.start : span.end])) in self.inbound.seen

    def check(self, text: str, *, floor: int = 0) -> str:
        """The text with redactions applied to hits ending after `floor` (the look-behind part is
        already out); sets `refusal` on a block."""
        if not self.active or not text:
            return text
        hits = [h for h in self._hits(text) if h[1] > floor]
        if not hits:
            return text
        pieces = []
        cursor = 0
        for start, end, name, action in sorted(hits):
            if name not in self.rules:
                self.rules.append(name)
            self.action = _stronger(self.action, action)
            if action == "flag":
                self.flagged = True
            elif action == "block":
                self.refusal = Refusal(
                    400, "content_policy_violation", f"The answer was blocked by the content policy rule '{name}'."
                )
                return text
            elif action == "redact":
                start = max(start, floor, cursor)
                if start < end:
                    pieces.append(text[cursor:start])
                    pieces.append(REDACTED)
                    cursor = end
        pieces.append(text[cursor:])
        return "".join(pieces)

    def verdict(self) -> Verdict:
        return self.inbound.verdict.with_output(self.rules, "block" if self.refusal else self.action, self.flagged)


# ---- streams ------------------------------------------------------------------------


class _Channel:
    """One stream of text (a choice's content, or one tool call's arguments)."""

    __slots__ = ("held", "window", "json_string")

    def __init__(self, json_string: bool) -> None:
        self.held = ""
        self.window = ""
        self.json_string = json_string


class StreamGuard:
    """Restores placeholders in streamed chunks and applies output rules as text flows.

    A placeholder split across chunks is held back until complete, so no fragment
    reaches the client; output rules see the text with a look-behind window.
    """

    def __init__(self, inbound: Inbound) -> None:
        self.inbound = inbound
        self.vault = inbound.vault
        self.checker = OutputChecker(inbound)
        self.refusal: Refusal | None = None
        self._channels: dict[tuple[int, int], _Channel] = {}
        self._template: dict[str, Any] | None = None
        self._passthrough = not self.vault and not self.checker.active

    @property
    def verdict(self) -> Verdict:
        return self.checker.verdict()

    def error_event(self) -> dict[str, Any]:
        return self.refusal.body() if self.refusal else {}

    def feed(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        if self.refusal is not None:
            return []
        if self._passthrough:
            return [chunk]
        choices = chunk.get("choices")
        if not isinstance(choices, list) or not choices:
            return [chunk]
        self._template = chunk
        out = chunk
        copied: set[int] = set()
        for index, choice in enumerate(choices):
            if not isinstance(choice, Mapping):
                continue
            delta = choice.get("delta")
            if not isinstance(delta, Mapping):
                continue
            number = choice.get("index", index)
            final = choice.get("finish_reason") is not None
            content = delta.get("content")
            if isinstance(content, str) or (final and (number, -1) in self._channels):
                text = self._push((number, -1), content or "", final, json_string=False)
                if self.refusal is not None:
                    return []
                if text != content:
                    if out is chunk:
                        out = dict(chunk)
                        copied.add(id(out))
                    _assign(out, ("choices", index, "delta", "content"), text, copied)
            calls = delta.get("tool_calls")
            if isinstance(calls, list):
                for call_index, call in enumerate(calls):
                    function = call.get("function") if isinstance(call, Mapping) else None
                    arguments = function.get("arguments") if isinstance(function, Mapping) else None
                    if not isinstance(arguments, str):
                        continue
                    key = (number, 1000 + int(call.get("index", call_index)))
                    text = self._push(key, arguments, False, json_string=True)
                    if self.refusal is not None:
                        return []
                    if text != arguments:
                        if out is chunk:
                            out = dict(chunk)
                            copied.add(id(out))
                        _assign(
                            out,
                            ("choices", index, "delta", "tool_calls", call_index, "function", "arguments"),
                            text,
                            copied,
                        )
            if final:
                flushed = self._flush_calls(number)
                if flushed:
                    if out is chunk:
                        out = dict(chunk)
                        copied.add(id(out))
                    calls_out = [
                        {"index": call_index - 1000, "function": {"arguments": text}} for call_index, text in flushed
                    ]
                    existing = list(delta.get("tool_calls") or [])
                    _assign(out, ("choices", index, "delta", "tool_calls"), existing + calls_out, copied)
        return [out]

    def _push(self, key: tuple[int, int], text: str, final: bool, *, json_string: bool) -> str:
        channel = self._channels.get(key)
        if channel is None:
            channel = self._channels[key] = _Channel(json_string)
        buffer = channel.held + text if channel.held else text
        cut = len(buffer) if final or not self.vault else self.vault.hold_from(buffer)
        emit, channel.held = buffer[:cut], buffer[cut:]
        if not emit:
            return ""
        emit = self.vault.restore(emit, json_string=json_string)
        if self.checker.active:
            window = channel.window
            checked = self.checker.check(window + emit, floor=len(window))
            if self.checker.refusal is not None:
                self.refusal = self.checker.refusal
                return ""
            emit = checked[len(window) :]
            channel.window = (window + emit)[-LOOK_BEHIND:]
        return emit

    def _flush_calls(self, number: int) -> list[tuple[int, str]]:
        flushed = []
        for (choice, call_index), channel in self._channels.items():
            if choice == number and call_index >= 1000 and channel.held:
                text = self._push((choice, call_index), "", True, json_string=True)
                if text:
                    flushed.append((call_index, text))
        return flushed

    def finish(self) -> list[dict[str, Any]]:
        """Whatever is still held back (a stream that ended without a finish reason)."""
        if self.refusal is not None or self._template is None:
            return []
        choices = []
        for (number, call_index), channel in list(self._channels.items()):
            if not channel.held:
                continue
            text = self._push((number, call_index), "", True, json_string=channel.json_string)
            if self.refusal is not None:
                return []
            if not text:
                continue
            if call_index < 0:
                delta: dict[str, Any] = {"content": text}
            else:
                delta = {"tool_calls": [{"index": call_index - 1000, "function": {"arguments": text}}]}
            choices.append({"index": number, "delta": delta, "finish_reason": None})
        if not choices:
            return []
        template = self._template
        chunk = {key: template[key] for key in ("id", "object", "created", "model") if key in template}
        chunk["choices"] = choices
        return [chunk]


def review_needed(verdict: Verdict) -> bool:
    """Whether the pipeline should put this request in the review queue."""
    return verdict.flagged


def review_enqueue(*, organization_id: int, request_id: str, verdict: Verdict) -> None:
    """Put a flagged request in the review queue (sync, one write; idempotent per request).

    Call it off the event loop, after the usage record is queued (the record and the
    review share the request id)."""
    from guardrails.services import review_open

    review_open(organization_id=organization_id, request_id=request_id, verdict=verdict.as_dict())
