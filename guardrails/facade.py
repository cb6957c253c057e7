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

import secrets
from collections import Counter
from collections.abc import Mapping
from typing import Any

from guardrails.body import Path, answer_slots, assign, request_slots
from guardrails.engine import CompiledPolicy, Rule, Scorers, TextScan, scan_text, value_digest
from guardrails.output import OutputChecker
from guardrails.results import Inbound, Outbound, Refusal, Verdict, stronger
from guardrails.snapshot import GuardSnapshot
from guardrails.stream import StreamGuard
from guardrails.vault import ConversationMemory, Vault

NOTHING_FOUND = Verdict()

__all__ = [
    "Guard",
    "Inbound",
    "Outbound",
    "Refusal",
    "StreamGuard",
    "Verdict",
    "review_enqueue",
    "review_needed",
]


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
        if policy.inert:  # a policy that turns every input check off costs nothing on the way in
            return Inbound(body, Vault(None), NOTHING_FOUND, None, policy)
        memory = self.memory if conversation else None
        if conversation:
            conversation = f"{organization_id}:{conversation}"  # one organization never sees another's numbering
        vault = Vault(self.memory.get(conversation) if conversation else None)
        slots = list(request_slots(body, endpoint))
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
                action = stronger(action, entity_action)
                flagged = flagged or entity_action == "flag"
            for _, _, rule in scan.rules:
                if rule.name not in rules:
                    rules.append(rule.name)
                action = stronger(action, rule.action)
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
                action = stronger(action, injection_action)
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
                assign(out, path, new_text, copied)
        if conversation and vault:
            self.memory.put(conversation, vault.remembered())
        return Inbound(out, vault, verdict, None, policy, frozenset(seen))

    # ---- out (one answer) ----

    def outbound(self, inbound: Inbound, payload: dict[str, Any]) -> Outbound:
        """Restore placeholders in a chat completion and apply the output rules."""
        checker = OutputChecker(inbound)
        if not checker.active and not inbound.vault:
            return Outbound(payload, inbound.verdict, None)  # nothing to restore, no output rule
        out = payload
        copied: set[int] = set()
        choices = payload.get("choices")
        if isinstance(choices, list):
            for index, choice in enumerate(choices):
                message = choice.get("message") if isinstance(choice, Mapping) else None
                if not isinstance(message, Mapping):
                    continue
                for path, text, json_string in answer_slots(message):
                    restored = inbound.vault.restore(text, json_string=json_string)
                    checked = checker.check(restored)
                    if checker.refusal is not None:
                        return Outbound(payload, checker.verdict(), checker.refusal)
                    if checked != text:
                        if out is payload:
                            out = dict(payload)
                            copied.add(id(out))
                        assign(out, ("choices", index, "message", *path), checked, copied)
        return Outbound(out, checker.verdict(), None)

    def stream(self, inbound: Inbound) -> StreamGuard:
        return StreamGuard(inbound)


def review_needed(verdict: Verdict) -> bool:
    """Whether the pipeline should put this request in the review queue."""
    return verdict.flagged


def review_enqueue(*, organization_id: int, request_id: str, verdict: Verdict) -> None:
    """Put a flagged request in the review queue (sync, one write; idempotent per request).

    Call it off the event loop, after the usage record is queued (the record and the
    review share the request id)."""
    from guardrails.services import review_open

    review_open(organization_id=organization_id, request_id=request_id, verdict=verdict.as_dict())
