"""In-process routing state: the embedded default (one process sees its own traffic)."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from budgets.clock import Clock, SettableClock
from routing.engine.state.base import EWMA_ALPHA, HEALTHY, Breaker, Health

MAX_WINDOW = 10_000  # outcomes kept per deployment, whatever the window's length


class _Slot:
    __slots__ = (
        "latency",
        "ttft",
        "inflight",
        "open_until",
        "opened",
        "outcomes",
        "errors",
        "probe_until",
        "ok",
        "err",
        "ejections",
        "returned_at",
    )

    def __init__(self) -> None:
        self.latency: float | None = None
        self.ttft: float | None = None
        self.inflight = 0
        self.open_until = 0.0
        self.opened = False
        self.outcomes: deque[tuple[float, bool]] = deque()
        self.errors = 0  # failures among `outcomes`
        self.probe_until = 0.0
        self.ok = 0
        self.err = 0
        self.ejections = 0
        self.returned_at = 0.0

    def health(self) -> Health:
        return Health(
            self.latency,
            self.ttft,
            max(self.inflight, 0),
            self.open_until,
            self.opened,
            self.ok,
            self.err,
            self.ejections,
        )

    def record(self, at: float, ok: bool, window: float) -> None:
        outcomes = self.outcomes
        outcomes.append((at, ok))
        if not ok:
            self.errors += 1
        while outcomes and (outcomes[0][0] <= at - window or len(outcomes) > MAX_WINDOW):
            _, old_ok = outcomes.popleft()
            if not old_ok:
                self.errors -= 1

    def eject(self, now: float, breaker: Breaker) -> None:
        if not self.opened and now - self.returned_at > breaker.window:
            self.ejections = 0  # healthy for a whole window since the last ejection: start over
        self.ejections += 1
        self.opened = True
        self.open_until = now + breaker.ejection_time(self.ejections)
        self.probe_until = 0.0
        self.outcomes.clear()
        self.errors = 0


def _ewma(old: float | None, sample: float) -> float:
    return sample if old is None else old + EWMA_ALPHA * (sample - old)


class MemoryState:
    name = "memory"

    def __init__(self, *, clock: Clock | None = None) -> None:
        self.clock = clock or SettableClock()
        self._slots: dict[int, _Slot] = {}
        self._counters: dict[str, int] = {}

    def now(self) -> float:
        return self.clock.timestamp()

    def _slot(self, deployment_id: int) -> _Slot:
        slot = self._slots.get(deployment_id)
        if slot is None:
            slot = self._slots[deployment_id] = _Slot()
        return slot

    async def read(self, ids: Sequence[int], *, counter: str | None = None) -> tuple[dict[int, Health], int]:
        slots = self._slots
        health = {i: (slots[i].health() if i in slots else HEALTHY) for i in ids}
        ticket = 0
        if counter is not None:
            ticket = self._counters.get(counter, 0)
            self._counters[counter] = ticket + 1
        return health, ticket

    async def claim_probe(self, deployment_id: int, ttl: float) -> bool:
        slot = self._slot(deployment_id)
        now = self.now()
        if slot.probe_until > now:
            return False
        slot.probe_until = now + ttl
        return True

    def begin(self, deployment_id: int) -> None:
        self._slot(deployment_id).inflight += 1

    def end(
        self,
        deployment_id: int,
        *,
        ok: bool | None,
        breaker: Breaker,
        latency: float | None = None,
        ttft: float | None = None,
    ) -> None:
        slot = self._slot(deployment_id)
        slot.inflight -= 1
        if latency is not None:
            slot.latency = _ewma(slot.latency, latency)
        if ttft is not None:
            slot.ttft = _ewma(slot.ttft, ttft)
        if ok is None:
            return
        now = self.now()
        if ok:
            slot.ok += 1
        else:
            slot.err += 1
        if slot.opened:
            if now < slot.open_until:
                return  # still ejected (a request sent before, or in panic mode): no verdict yet
            if ok:
                # The probe succeeded: back in the pool with a clean window.
                slot.opened = False
                slot.open_until = 0.0
                slot.probe_until = 0.0
                slot.returned_at = now
                slot.outcomes.clear()
                slot.errors = 0
            else:
                slot.eject(now, breaker)
            return
        slot.record(now, ok, breaker.window)
        if ok:
            return
        total = len(slot.outcomes)
        if total >= breaker.threshold and slot.errors >= breaker.error_rate * total:
            slot.eject(now, breaker)

    def inspect(self, ids: Sequence[int]) -> dict[int, Health]:
        return {i: (self._slots[i].health() if i in self._slots else HEALTHY) for i in ids}

    def reset(self, ids: Sequence[int] | None = None) -> None:
        if ids is None:
            self._slots.clear()
            self._counters.clear()
            return
        for deployment_id in ids:
            self._slots.pop(deployment_id, None)

    async def written(self) -> None:
        return None  # updates apply at once

    async def flush(self) -> None:
        return None
