"""A stream's idle timeout: one timer per stream, counting only the time spent waiting upstream."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from providers.adapters.base import UpstreamError
from routing.engine.state.memory import MemoryState
from routing.pipeline.streams import TrackedStream
from tests.routing.test_strategies import candidate


class Upstream:
    """Chunks that arrive after the given delays (seconds)."""

    usage = None

    def __init__(self, delays: list[float]) -> None:
        self.delays = delays
        self.closed = False

    async def _chunks(self):
        for i, delay in enumerate(self.delays):
            await asyncio.sleep(delay)
            yield {"choices": [{"index": 0, "delta": {"content": str(i)}}]}

    def __aiter__(self):
        return self._chunks()

    async def aclose(self) -> None:
        self.closed = True


def tracked(upstream: Upstream, idle: float | None) -> TrackedStream:
    return TrackedStream(upstream, None, candidate(1), 0.0, state=MemoryState(), idle_timeout=idle)


async def collect(stream: TrackedStream, pause: float = 0.0) -> list[Any]:
    out = []
    async for chunk in stream:
        out.append(chunk["choices"][0]["delta"]["content"])
        await asyncio.sleep(pause)  # a slow client: time spent here is not upstream silence
    return out


def test_chunks_within_the_idle_timeout_all_arrive():
    assert asyncio.run(collect(tracked(Upstream([0.01] * 5), idle=0.2))) == ["0", "1", "2", "3", "4"]


def test_a_stall_ends_the_stream_with_an_idle_timeout():
    upstream = Upstream([0.0, 0.0, 5.0])

    async def run() -> tuple[list[str], UpstreamError]:
        got: list[str] = []
        with pytest.raises(UpstreamError) as caught:
            async for chunk in tracked(upstream, idle=0.15):
                got.append(chunk["choices"][0]["delta"]["content"])
        return got, caught.value

    started = asyncio.run(asyncio.wait_for(run(), 3))
    got, error = started
    assert got == ["0", "1"]
    assert error.status == 504 and error.code == "stream_idle_timeout"
    assert upstream.closed


def test_a_slow_client_is_not_an_idle_upstream():
    # Each chunk waits 0.1 s upstream (under the 0.15 s timeout) and 0.2 s at the client.
    assert asyncio.run(collect(tracked(Upstream([0.1] * 4), idle=0.15), pause=0.2)) == ["0", "1", "2", "3"]


def test_a_cancellation_from_outside_stays_a_cancellation():
    async def run() -> None:
        task = asyncio.ensure_future(collect(tracked(Upstream([0.0, 5.0]), idle=0.3)))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.4)  # the watch's timer was cancelled with the stream: nothing fires later

    asyncio.run(run())


def test_no_idle_timeout_waits_as_long_as_it_takes():
    assert asyncio.run(collect(tracked(Upstream([0.0, 0.2]), idle=None))) == ["0", "1"]
