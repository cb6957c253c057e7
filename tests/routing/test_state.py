"""The routing state backends behave alike: breakers open after K failures within W,
cool down for T, let one probe through half-open, and close on its success."""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import pytest

from routing.engine.state import Breaker
from routing.engine.state.memory import MemoryState

BACKENDS = ["memory"] + (["redis"] if os.environ.get("REDIS_URL") else [])


@pytest.fixture(params=BACKENDS)
def state(request):
    if request.param == "memory":
        yield MemoryState()
        return
    from routing.engine.state.redis import RedisState

    backend = RedisState(os.environ["REDIS_URL"], prefix="gatehouse:routing:test", cache_ttl=0.0)
    backend.configure(namespace=uuid.uuid4().hex[:8])
    yield backend
    backend.reset()


def run(coro):
    return asyncio.run(coro)


async def settle(state) -> None:
    await asyncio.sleep(0.03)  # the Redis backend flushes queued updates within milliseconds


def test_breaker_opens_after_k_failures_within_the_window_and_probes_half_open(state):
    breaker = Breaker(threshold=3, window=60, cooldown=0.5)

    async def scenario():
        for _ in range(2):
            state.begin(1)
            state.end(1, ok=False, breaker=breaker)
        await settle(state)
        health, _ = await state.read([1])
        assert not health[1].opened
        state.begin(1)
        state.end(1, ok=False, breaker=breaker)
        await settle(state)
        health, _ = await state.read([1])
        assert health[1].status(time.time()) == "cooling"
        await asyncio.sleep(0.55)
        health, _ = await state.read([1])
        assert health[1].status(time.time()) == "half_open"
        assert await state.claim_probe(1, ttl=5)
        assert not await state.claim_probe(1, ttl=5)  # one probe at a time
        state.begin(1)
        state.end(1, ok=True, breaker=breaker, latency=2.0)
        await settle(state)
        health, _ = await state.read([1])
        assert health[1].status(time.time()) == "healthy" and health[1].inflight == 0
        await state.flush()

    run(scenario())


def test_failures_outside_the_window_do_not_count(state):
    breaker = Breaker(threshold=2, window=0.2, cooldown=30)

    async def scenario():
        state.end(2, ok=False, breaker=breaker)
        await asyncio.sleep(0.3)
        state.end(2, ok=False, breaker=breaker)
        await settle(state)
        health, _ = await state.read([2])
        assert not health[2].opened
        await state.flush()

    run(scenario())


def test_latency_average_in_flight_and_round_robin_tickets(state):
    breaker = Breaker()

    async def scenario():
        for sample in (10.0, 20.0):
            state.begin(3)
            state.end(3, ok=True, breaker=breaker, latency=sample, ttft=sample * 10)
        state.begin(3)
        await settle(state)
        health, first = await state.read([3], counter="rr-test")
        _, second = await state.read([3], counter="rr-test")
        assert health[3].latency == pytest.approx(13.0) and health[3].ttft == pytest.approx(130.0)
        assert health[3].inflight == 1
        assert second == first + 1
        await state.flush()

    run(scenario())


def test_client_faults_do_not_feed_the_breaker(state):
    breaker = Breaker(threshold=1, window=60, cooldown=30)

    async def scenario():
        state.end(4, ok=None, breaker=breaker)
        await settle(state)
        health, _ = await state.read([4])
        assert not health[4].opened
        await state.flush()

    run(scenario())
