"""Output rules over answer text: secrets, PII the request did not hold, deny rules."""

from __future__ import annotations

from guardrails.detectors import PII_ENTITIES, SECRET_ENTITIES, Span
from guardrails.engine import REDACTED, canonical, value_digest
from guardrails.results import Inbound, Refusal, Verdict, stronger


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
            self.action = stronger(self.action, action)
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
