"""The routing state backends behave alike: outlier ejection on error rate over a
minimum volume within a sliding window, ejection time growing with repeated
ejections, one probe once it is over, and a clean slate on its success. Time is
the backend's injected clock, moved by the tests."""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from budgets.clock import SettableClock
from routing.engine.state import Breaker, routing_state_build
from routing.engine.state.memory import MemoryState

BACKENDS = ["memory"] + (["redis"] if os.environ.get("REDIS_URL") else [])
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=BACKENDS)
def state(request):
    clock = SettableClock()
    with clock.frozen(START):
        if request.param == "memory":
            yield MemoryState(clock=clock)
            return
        from routing.engine.state.redis import RedisState

        backend = RedisState(os.environ["REDIS_URL"], prefix="gatehouse:routing:test", cache_ttl=0.0, clock=clock)
        backend.configure(namespace=uuid.uuid4().hex[:8])
        yield backend
        backend.reset()


def run(coro):
    return asyncio.run(coro)


async def settle(state) -> None:
    if state.name == "redis":
        await asyncio.sleep(0.03)  # the Redis backend flushes queued updates within milliseconds


def outcomes(state, deployment_id: int, breaker: Breaker, pattern: str) -> None:
    """Report one outcome per character: o ok, x failed."""
    for mark in pattern:
        state.begin(deployment_id)
        state.end(deployment_id, ok=mark == "o", breaker=breaker)


def test_ejected_at_the_error_rate_once_the_minimum_volume_is_reached_then_probed(state):
    breaker = Breaker(threshold=4, window=60, cooldown=10, error_rate=0.5)

    async def scenario():
        outcomes(state, 1, breaker, "xxx")  # 100% errors, but only 3 outcomes
        await settle(state)
        health, _ = await state.read([1])
        assert not health[1].opened
        outcomes(state, 1, breaker, "x")
        await settle(state)
        health, _ = await state.read([1])
        assert health[1].status(state.now()) == "ejected" and health[1].ejections == 1
        assert health[1].open_until == pytest.approx(state.now() + 10)
        state.clock.advance(timedelta(seconds=10.5))
        health, _ = await state.read([1])
        assert health[1].status(state.now()) == "half_open"
        assert await state.claim_probe(1, ttl=5)
        assert not await state.claim_probe(1, ttl=5)  # one probe at a time
        state.begin(1)
        state.end(1, ok=True, breaker=breaker, latency=2.0)
        await settle(state)
        health, _ = await state.read([1])
        assert health[1].status(state.now()) == "healthy" and health[1].inflight == 0
        await state.flush()

    run(scenario())


def test_an_error_rate_below_the_threshold_does_not_eject(state):
    breaker = Breaker(threshold=4, window=60, cooldown=10, error_rate=0.5)

    async def scenario():
        outcomes(state, 2, breaker, "oooxoox" * 5)  # about 29% errors
        await settle(state)
        health, _ = await state.read([2])
        assert not health[2].opened and health[2].failures == 10 and health[2].successes == 25
        await state.flush()

    run(scenario())


def test_outcomes_outside_the_window_do_not_count(state):
    breaker = Breaker(threshold=2, window=5, cooldown=30)

    async def scenario():
        outcomes(state, 3, breaker, "x")
        state.clock.advance(timedelta(seconds=6))
        outcomes(state, 3, breaker, "x")
        await settle(state)
        health, _ = await state.read([3])
        assert not health[3].opened
        await state.flush()

    run(scenario())


def test_ejection_time_grows_with_repeated_ejections_up_to_the_cap(state):
    breaker = Breaker(threshold=1, window=60, cooldown=10, max_ejection=25)

    async def scenario():
        seen = []
        outcomes(state, 4, breaker, "x")
        for _ in range(3):
            await settle(state)
            health, _ = await state.read([4])
            seen.append(round(health[4].open_until - state.now()))
            state.clock.advance(timedelta(seconds=seen[-1] + 1))
            outcomes(state, 4, breaker, "x")  # the probe fails
        assert seen == [10, 20, 25]
        await state.flush()

    run(scenario())


def test_failures_while_ejected_do_not_extend_the_ejection(state):
    breaker = Breaker(threshold=1, window=60, cooldown=10)

    async def scenario():
        outcomes(state, 5, breaker, "x")
        state.clock.advance(timedelta(seconds=5))
        outcomes(state, 5, breaker, "xxxx")  # panic-mode traffic while ejected
        await settle(state)
        health, _ = await state.read([5])
        assert health[5].ejections == 1 and health[5].open_until - state.now() == pytest.approx(5)
        await state.flush()

    run(scenario())


def test_latency_average_in_flight_and_round_robin_tickets(state):
    breaker = Breaker()

    async def scenario():
        for sample in (10.0, 20.0):
            state.begin(6)
            state.end(6, ok=True, breaker=breaker, latency=sample, ttft=sample * 10)
        state.begin(6)
        await settle(state)
        health, first = await state.read([6], counter="rr-test")
        _, second = await state.read([6], counter="rr-test")
        assert health[6].latency == pytest.approx(13.0) and health[6].ttft == pytest.approx(130.0)
        assert health[6].inflight == 1
        assert second == first + 1
        await state.flush()

    run(scenario())


def test_client_faults_do_not_feed_ejection(state):
    breaker = Breaker(threshold=1, window=60, cooldown=30)

    async def scenario():
        state.end(7, ok=None, breaker=breaker)
        await settle(state)
        health, _ = await state.read([7])
        assert not health[7].opened
        await state.flush()

    run(scenario())


def test_state_is_built_from_explicit_arguments():
    clock = SettableClock()
    built = routing_state_build(clock=clock)
    assert built.name == "memory" and built.clock is clock
    if os.environ.get("REDIS_URL"):
        shared = routing_state_build(clock=clock, redis_url=os.environ["REDIS_URL"], prefix="p:test", cache_ttl=0.0)
        assert shared.name == "redis" and shared.clock is clock and shared.prefix == "p:test"


def test_written_returns_once_queued_updates_are_readable_by_others(state):
    """What a probe round relies on: no wait for the backend's own flush delay."""
    breaker = Breaker(threshold=1, window=60, cooldown=10, error_rate=0.5)

    async def scenario():
        outcomes(state, 9, breaker, "x")
        await state.written()
        assert state.inspect([9])[9].status(state.now()) == "ejected"  # the console's synchronous read
        await state.written()  # nothing queued: returns at once
        await state.flush()

    run(scenario())


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="the Redis backend's read cache")
def test_a_successful_probe_is_not_hidden_by_the_read_cache():
    """A process that probed an ejected deployment and saw it succeed does not go on
    deciding on its cached copy of the ejection (which would skip the deployment
    for up to the cache's lifetime, its probe already spent)."""
    from routing.engine.state.redis import RedisState

    clock = SettableClock()
    breaker = Breaker(threshold=1, window=60, cooldown=10, error_rate=0.5)
    with clock.frozen(START):
        state = RedisState(os.environ["REDIS_URL"], prefix="gatehouse:routing:test", cache_ttl=60.0, clock=clock)
        state.configure(namespace=uuid.uuid4().hex[:8])

        async def scenario():
            outcomes(state, 3, breaker, "x")
            await state.written()
            state.clock.advance(timedelta(seconds=11))
            health, _ = await state.read([3])  # cached for a minute from here
            assert health[3].status(state.now()) == "half_open"
            assert await state.claim_probe(3, ttl=5)
            state.begin(3)
            state.end(3, ok=True, breaker=breaker, latency=1.0)
            await state.written()
            health, _ = await state.read([3])
            assert health[3].status(state.now()) == "healthy"
            await state.flush()

        try:
            run(scenario())
        finally:
            state.reset()
