"""The shared, mutable side of routing: what the deployments have been doing.

Latency moving averages, requests in flight, outlier ejection and round-robin
counters live behind `RoutingState`, with two backends: in-process (the embedded
default) and Redis (several processes or hosts share one picture). A routing
decision reads the candidates' health (and a round-robin ticket) in one call —
one Redis round trip at most, none when a recent read is cached; outcomes are
reported without waiting (`begin` / `end` queue the update).

Outlier ejection (after Envoy's): each deployment keeps a sliding window of
outcomes; when at least `min_requests` outcomes in the window have an error
rate of `error_rate` or more, the deployment is ejected for `base_ejection`
seconds times the number of times it has been ejected (capped at
`max_ejection`). When the time is up, one request probes it: a success returns
it to the pool (and forgets the window), a failure ejects it again for longer.
How much of a route may be ejected at once, and what happens when all of it is
(panic mode), is decided where a route's candidates are ordered, since one
deployment may serve several routes.

Time comes from a `Clock` passed to the backend, so tests move it instead of
sleeping.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from budgets.clock import Clock

EWMA_ALPHA = 0.3  # weight of the newest latency sample


@dataclass(frozen=True, slots=True)
class Breaker:
    """Outlier-ejection settings for one deployment as seen from one route.

    `threshold`: the minimum number of outcomes in the window before the error
    rate counts; `window`: seconds of outcomes kept; `cooldown`: the base
    ejection time; `error_rate`: the share of failures that ejects;
    `max_ejection`: the cap on the growing ejection time.
    """

    threshold: int = 5
    window: float = 60.0
    cooldown: float = 30.0
    error_rate: float = 0.5
    max_ejection: float = 300.0

    def ejection_time(self, ejections: int) -> float:
        """Seconds out for the n-th ejection in a row (1-based)."""
        return min(self.cooldown * max(ejections, 1), max(self.max_ejection, self.cooldown))


DEFAULT_BREAKER = Breaker()


@dataclass(frozen=True, slots=True)
class Health:
    latency: float | None = None  # EWMA of ms per output token (non-streamed answers)
    ttft: float | None = None  # EWMA of ms to the first token (streams)
    inflight: int = 0
    open_until: float = 0.0  # epoch seconds (of the state's clock); 0 when not ejected
    opened: bool = False  # ejected (or waiting for the probe after an ejection)
    successes: int = 0
    failures: int = 0
    ejections: int = 0  # ejections in a row (the multiplier of the ejection time)

    def status(self, now: float) -> str:
        if not self.opened:
            return "healthy"
        return "ejected" if now < self.open_until else "half_open"


HEALTHY = Health()


class RoutingState(Protocol):
    name: str
    clock: Clock

    def now(self) -> float:
        """Epoch seconds by this state's clock."""
        ...

    async def read(self, ids: Sequence[int], *, counter: str | None = None) -> tuple[dict[int, Health], int]:
        """Health of these deployments and, when `counter` is named, its next value."""
        ...

    async def claim_probe(self, deployment_id: int, ttl: float) -> bool:
        """Whether this caller may send the one probe request after an ejection."""
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
        """It ended: `ok` True/False feeds the outcome window (None: neither, e.g. the client's fault)."""
        ...

    def inspect(self, ids: Sequence[int]) -> dict[int, Health]:
        """A synchronous read for the console."""
        ...

    def reset(self, ids: Sequence[int] | None = None) -> None:
        """Forget what is known (all, or these deployments): tests and operators."""
        ...

    async def written(self) -> None:
        """Return once every update queued so far is in the state others read."""
        ...

    async def flush(self) -> None:
        """Send queued updates now and let go of the connection (shutdown)."""
        ...
