"""Token buckets for requests and tokens per minute, and OpenAI's rate-limit headers.

A bucket holds up to `capacity` (the per-minute limit) and refills continuously at
capacity/60 per second, so a limit never allows a double burst at a minute
boundary. A request takes 1 from each requests bucket and its estimated tokens
from each tokens bucket; settlement gives back what it did not use (or takes the
excess), so a tokens bucket can go below zero and then makes callers wait.

`LocalBuckets` keeps the state in the memory of its owner (the embedded default: limits
are per process); with Redis the same arithmetic runs inside the admission script.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable

from budgets.admission.types import Bucket, CompiledLimit

WINDOW = 60.0  # seconds a full bucket takes to refill
IDLE_DROP = 600.0  # buckets untouched this long are full again and forgotten


def buckets_for(limits: Iterable[CompiledLimit], *, tokens: int) -> list[Bucket]:
    found: list[Bucket] = []
    for limit in limits:
        base = f"{limit.scope}:{limit.scope_id}"
        if limit.rpm:
            found.append(Bucket(key=f"{base}:requests", kind="requests", capacity=limit.rpm, cost=1, limit=limit))
        if limit.tpm:
            found.append(Bucket(key=f"{base}:tokens", kind="tokens", capacity=limit.tpm, cost=tokens, limit=limit))
    return found


def refill(level: float, elapsed: float, capacity: int) -> float:
    return min(float(capacity), level + max(0.0, elapsed) * capacity / WINDOW)


def wait_for(level: float, need: float, capacity: int) -> float:
    """Seconds until a bucket at `level` holds `need`."""
    missing = min(need, capacity) - level
    return max(0.0, missing * WINDOW / capacity) if capacity else 0.0


class LocalBuckets:
    """Buckets in this process's memory, shared by its event loops."""

    def __init__(self) -> None:
        self._state: dict[str, list[float]] = {}  # key -> [level, monotonic time]
        self._lock = threading.Lock()
        self._last_sweep = time.monotonic()

    def _level(self, key: str, capacity: int, now: float) -> float:
        state = self._state.get(key)
        if state is None:
            return float(capacity)
        return refill(state[0], now - state[1], capacity)

    def take(self, buckets: list[Bucket]) -> tuple[int, list[float]]:
        """Take from every bucket or from none: (index of the first short bucket or -1, levels).

        On success the levels are those after taking; on refusal, the level of each
        bucket as it stands.
        """
        now = time.monotonic()
        with self._lock:
            levels = [self._level(b.key, b.capacity, now) for b in buckets]
            for index, (bucket, level) in enumerate(zip(buckets, levels, strict=True)):
                if level < min(bucket.cost, bucket.capacity):
                    return index, levels
            after = []
            for bucket, level in zip(buckets, levels, strict=True):
                self._state[bucket.key] = [level - bucket.cost, now]
                after.append(level - bucket.cost)
            if now - self._last_sweep > IDLE_DROP:
                self._sweep(now)
            return -1, after

    def refund(self, buckets: list[Bucket]) -> None:
        """Undo a `take` (the request was refused by a budget after all)."""
        now = time.monotonic()
        with self._lock:
            for bucket in buckets:
                state = self._state.get(bucket.key)
                if state is not None:
                    level = refill(state[0], now - state[1], bucket.capacity)
                    self._state[bucket.key] = [min(float(bucket.capacity), level + bucket.cost), now]

    def gate(self, groups: list[tuple[Bucket | None, Bucket | None]]) -> tuple[int, float]:
        """Take from the first group whose buckets all have room: (index, 0) or (-1, seconds to wait)."""
        now = time.monotonic()
        best = -1.0
        with self._lock:
            for index, group in enumerate(groups):
                present = [b for b in group if b is not None]
                levels = [self._level(b.key, b.capacity, now) for b in present]
                short = [
                    wait_for(level, b.cost, b.capacity)
                    for b, level in zip(present, levels, strict=True)
                    if level < min(b.cost, b.capacity)
                ]
                if short:
                    wait = max(short)
                    best = wait if best < 0 else min(best, wait)
                    continue
                for bucket, level in zip(present, levels, strict=True):
                    self._state[bucket.key] = [level - bucket.cost, now]
                return index, 0.0
        return -1, max(best, 0.0)

    def give_back(self, adjustments: Iterable[tuple[str, int]], delta: int) -> None:
        """Return `delta` tokens (negative: take more) to each of these buckets."""
        now = time.monotonic()
        with self._lock:
            for key, capacity in adjustments:
                state = self._state.get(key)
                if state is None:
                    continue
                level = refill(state[0], now - state[1], capacity)
                self._state[key] = [min(float(capacity), level + delta), now]

    def _sweep(self, now: float) -> None:
        self._last_sweep = now
        for key in [k for k, (_, at) in self._state.items() if now - at > IDLE_DROP]:
            del self._state[key]

    def clear(self) -> None:
        with self._lock:
            self._state.clear()


def duration_text(seconds: float) -> str:
    """OpenAI's reset format: `20ms`, `1s`, `6m0s`, `1h2m3s`."""
    if seconds < 1:
        return f"{max(0, math.ceil(seconds * 1000))}ms"
    whole = math.ceil(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def rate_headers(buckets: list[Bucket], levels: list[float]) -> tuple[tuple[str, str], ...]:
    """x-ratelimit-{limit,remaining,reset}-{requests,tokens} from the tightest bucket of each kind."""
    headers: list[tuple[str, str]] = []
    for kind in ("requests", "tokens"):
        tightest: tuple[float, Bucket, float] | None = None
        for bucket, level in zip(buckets, levels, strict=True):
            if bucket.kind != kind:
                continue
            share = level / bucket.capacity
            if tightest is None or share < tightest[0]:
                tightest = (share, bucket, level)
        if tightest is None:
            continue
        _, bucket, level = tightest
        headers.append((f"x-ratelimit-limit-{kind}", str(bucket.capacity)))
        headers.append((f"x-ratelimit-remaining-{kind}", str(max(0, math.floor(level)))))
        headers.append((f"x-ratelimit-reset-{kind}", duration_text(wait_for(level, bucket.capacity, bucket.capacity))))
    return tuple(headers)
