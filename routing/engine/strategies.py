"""Strategies: put a route's healthy candidates in the order they will be tried.

Pure functions of the candidates, their health and a random source, so they are
unit-testable without a server. The first candidate gets the request; the rest
are where retries go.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from routing.engine.snapshot import Candidate
from routing.engine.state import HEALTHY, Health

DEFAULT_OUTPUT_TOKENS = 256


def weighted(candidates: Sequence[Candidate], rng: random.Random | None = None) -> list[Candidate]:
    """A weighted shuffle: P(first) is proportional to weight (Efraimidis–Spirakis)."""
    if len(candidates) <= 1:
        return [c for c in candidates if c.weight > 0] or list(candidates)
    draw = (rng or random).random
    keyed = [(draw() ** (1.0 / c.weight), c) for c in candidates if c.weight > 0]
    keyed.sort(key=lambda pair: pair[0], reverse=True)
    return [c for _, c in keyed]


def round_robin(candidates: Sequence[Candidate], ticket: int) -> list[Candidate]:
    """Weighted round robin: over `sum(weights)` tickets each candidate leads `weight` times."""
    live = [c for c in candidates if c.weight > 0]
    if len(live) <= 1:
        return live
    total = sum(c.weight for c in live)
    slot = ticket % total
    for index, candidate in enumerate(live):
        if slot < candidate.weight:
            return live[index:] + live[:index]
        slot -= candidate.weight
    return live


def _score(health: Health, stream: bool) -> float:
    first, second = (health.ttft, health.latency) if stream else (health.latency, health.ttft)
    if first is not None:
        return first
    if second is not None:
        return second
    return -1.0  # never measured: try it first, so it gets measured


def least_latency(
    candidates: Sequence[Candidate],
    health: Mapping[int, Health],
    *,
    stream: bool,
    exploration: float,
    rng: random.Random | None = None,
) -> list[Candidate]:
    """Fastest first by moving average (ms per output token; TTFT for streams).

    With probability `exploration` the order is a weighted shuffle instead, so a
    deployment that was slow keeps being sampled and its recovery is noticed.
    """
    rand = rng or random
    if exploration and rand.random() < exploration:
        return weighted(candidates, rng)
    shuffled = list(candidates)
    rand.shuffle(shuffled)
    shuffled.sort(key=lambda c: _score(health.get(c.id, HEALTHY), stream))
    return [c for c in shuffled if c.weight > 0] or shuffled


def least_busy(
    candidates: Sequence[Candidate], health: Mapping[int, Health], rng: random.Random | None = None
) -> list[Candidate]:
    """Fewest requests in flight first (ties broken at random)."""
    shuffled = [c for c in candidates if c.weight > 0]
    (rng or random).shuffle(shuffled)
    shuffled.sort(key=lambda c: health.get(c.id, HEALTHY).inflight)
    return shuffled


def estimated_cost(candidate: Candidate, prompt_tokens: int, output_tokens: int) -> float:
    return (prompt_tokens * candidate.input_price + output_tokens * candidate.output_price) / 1_000_000


def lowest_cost(
    candidates: Sequence[Candidate],
    *,
    prompt_tokens: int,
    output_tokens: int | None,
    rng: random.Random | None = None,
) -> list[Candidate]:
    """Cheapest first for this request's estimated tokens at registry prices."""
    out = output_tokens or DEFAULT_OUTPUT_TOKENS
    shuffled = [c for c in candidates if c.weight > 0]
    (rng or random).shuffle(shuffled)
    shuffled.sort(key=lambda c: estimated_cost(c, prompt_tokens, out))
    return shuffled
