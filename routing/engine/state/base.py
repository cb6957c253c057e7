"""The shared, mutable side of routing: what the deployments have been doing.

Latency moving averages, requests in flight, circuit breakers and round-robin
counters live behind `RoutingState`, with two backends: in-process (the embedded
default) and Redis (several processes or hosts share one picture). A routing
decision reads the candidates' health (and a round-robin ticket) in one call —
one Redis round trip at most, none when a recent read is cached; outcomes are
reported without waiting (`begin` / `end` queue the update).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

EWMA_ALPHA = 0.3  # weight of the newest latency sample


@dataclass(frozen=True, slots=True)
class Breaker:
    """K failures within W seconds open the breaker for T seconds; then one probe."""

    threshold: int = 5
    window: float = 60.0
    cooldown: float = 30.0


DEFAULT_BREAKER = Breaker()


@dataclass(frozen=True, slots=True)
class Health:
    latency: float | None = None  # EWMA of ms per output token (non-streamed answers)
    ttft: float | None = None  # EWMA of ms to the first token (streams)
    inflight: int = 0
    open_until: float = 0.0  # epoch seconds; 0 when the breaker is closed
    opened: bool = False
    successes: int = 0
    failures: int = 0

    def status(self, now: float) -> str:
        if not self.opened:
            return "healthy"
        return "cooling" if now < self.open_until else "half_open"


HEALTHY = Health()


class RoutingState(Protocol):
    name: str

    async def read(self, ids: Sequence[int], *, counter: str | None = None) -> tuple[dict[int, Health], int]:
        """Health of these deployments and, when `counter` is named, its next value."""
        ...

    async def claim_probe(self, deployment_id: int, ttl: float) -> bool:
        """Whether this caller may send the one half-open probe request."""
        ...

    def begin(self, deployment_id: int) -> None:
        """A request to this deployment starts (in-flight + 1)."""
        ...

    def end(
        self,
        deployment_id: int,
        *,
        ok: bool | None,
        breaker: Breaker,
        latency: float | None = None,
        ttft: float | None = None,
    ) -> None:
        """It ended: `ok` True/False feeds the breaker (None: neither, e.g. the client's fault)."""
        ...

    def inspect(self, ids: Sequence[int]) -> dict[int, Health]:
        """A synchronous read for the console."""
        ...

    def reset(self, ids: Sequence[int] | None = None) -> None:
        """Forget what is known (all, or these deployments): tests and operators."""
        ...

    async def flush(self) -> None:
        """Send queued updates now (shutdown)."""
        ...
