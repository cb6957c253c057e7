"""In-process routing state: the embedded default (one process sees its own traffic)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence

from routing.engine.state.base import EWMA_ALPHA, HEALTHY, Breaker, Health


class _Slot:
    __slots__ = ("latency", "ttft", "inflight", "open_until", "opened", "failures_at", "probe_until", "ok", "err")

    def __init__(self) -> None:
        self.latency: float | None = None
        self.ttft: float | None = None
        self.inflight = 0
        self.open_until = 0.0
        self.opened = False
        self.failures_at: deque[float] = deque()
        self.probe_until = 0.0
        self.ok = 0
        self.err = 0

    def health(self) -> Health:
        return Health(self.latency, self.ttft, max(self.inflight, 0), self.open_until, self.opened, self.ok, self.err)


def _ewma(old: float | None, sample: float) -> float:
    return sample if old is None else old + EWMA_ALPHA * (sample - old)


class MemoryState:
    name = "memory"

    def __init__(self) -> None:
        self._slots: dict[int, _Slot] = {}
        self._counters: dict[str, int] = {}

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
        now = time.monotonic()
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
        now = time.time()
        if ok:
            slot.ok += 1
            if slot.opened and now >= slot.open_until:
                slot.opened = False
                slot.open_until = 0.0
                slot.failures_at.clear()
                slot.probe_until = 0.0
            return
        slot.err += 1
        if slot.opened:
            # The probe (or a request started before the breaker opened) failed: cool down again.
            slot.open_until = now + breaker.cooldown
            slot.probe_until = 0.0
            return
        failures = slot.failures_at
        failures.append(now)
        while failures and failures[0] < now - breaker.window:
            failures.popleft()
        if len(failures) >= breaker.threshold:
            slot.opened = True
            slot.open_until = now + breaker.cooldown
            failures.clear()

    def inspect(self, ids: Sequence[int]) -> dict[int, Health]:
        return {i: (self._slots[i].health() if i in self._slots else HEALTHY) for i in ids}

    def reset(self, ids: Sequence[int] | None = None) -> None:
        if ids is None:
            self._slots.clear()
            self._counters.clear()
            return
        for deployment_id in ids:
            self._slots.pop(deployment_id, None)

    async def flush(self) -> None:
        return None
