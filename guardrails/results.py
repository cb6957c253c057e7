"""What the guard hands back: verdicts, refusals, the inbound and outbound results."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from guardrails.engine import STRENGTH, CompiledPolicy
from guardrails.vault import Vault


def stronger(a: str, b: str) -> str:
    return a if STRENGTH.get(a, 0) >= STRENGTH.get(b, 0) else b


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
            action=stronger(self.action, action),
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
