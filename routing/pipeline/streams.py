"""Stage 7 for streams: open an upstream stream within the request's budget.

A stream moves on to another candidate only before its first chunk: `stream_once`
reads the first chunk before returning (within the deployment's TTFT timeout), so a
stream that fails at once still falls back and the client has received nothing but
headers. `TrackedStream` then relays the rest with an idle timeout and reports the
outcome to the routing state when it ends, however it ends.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx

from providers.facade import ChatStream, UpstreamError, Usage, get_adapter
from routing.engine.snapshot import Candidate, CompiledRoute
from routing.engine.state import RoutingState
from routing.pipeline.call import (
    CallBudget,
    GiveBack,
    Take,
    _breaker_outcome,
    _target,
    _upstream_body,
    attempts,
    idle_timeout,
    ttft_timeout,
    with_fallbacks,
)
from routing.pipeline.context import RequestContext
from routing.pipeline.route import RoutePlan


def ttft_error(seconds: float) -> UpstreamError:
    return UpstreamError(
        f"The upstream stream sent no first token within {seconds:g}s.",
        status=504,
        type="timeout",
        code="ttft_timeout",
        retryable=True,
    )


def idle_error(seconds: float) -> UpstreamError:
    return UpstreamError(
        f"The upstream stream stalled: nothing arrived for {seconds:g}s.",
        status=504,
        type="timeout",
        code="stream_idle_timeout",
    )


class IdleWatch:
    """The idle timeout of one stream, with one timer for the whole stream.

    `asyncio.timeout` around every chunk costs a timer of its own per chunk (made
    and cancelled: about 4 µs, most of a chunk's relay cost). Here each wait only
    notes when it began; the single timer, when it fires, cancels the wait if it
    has lasted `seconds`, and otherwise sets itself again for when it would.
    """

    __slots__ = ("seconds", "loop", "task", "since", "fired", "_cancelling", "_handle")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.loop = asyncio.get_running_loop()
        self.task: asyncio.Task | None = None
        self.since: float | None = None  # when the current wait began; None between waits
        self.fired = False
        self._cancelling = 0
        self._handle = self.loop.call_at(self.loop.time() + seconds, self._check)

    def begin(self) -> None:
        self.task = asyncio.current_task(self.loop)  # with the loop: no lookup (a system call in 3.11)
        self._cancelling = self.task.cancelling() if self.task is not None else 0
        self.since = self.loop.time()

    def end(self) -> None:
        self.since = None

    def expired(self) -> bool:
        """After a `CancelledError` in a wait: whether this timeout caused it (and only it)."""
        return self.fired and self.task is not None and self.task.uncancel() <= self._cancelling

    def _check(self) -> None:
        since, now = self.since, self.loop.time()
        if since is not None and now - since >= self.seconds and self.task is not None:
            self.fired = True
            self.task.cancel()
            return
        self._handle = self.loop.call_at((since if since is not None else now) + self.seconds, self._check)

    def close(self) -> None:
        self._handle.cancel()


class TrackedStream:
    """An open upstream stream whose first chunk has already arrived.

    Replays that chunk, then relays the rest, each within the idle timeout (a
    stall raises `UpstreamError` 504 `stream_idle_timeout` from the iteration);
    reports the outcome (failure or nothing) to the routing state when the stream
    ends, however it ends.
    """

    def __init__(
        self,
        inner: ChatStream,
        first: dict[str, Any] | None,
        candidate: Candidate,
        ttft: float,
        *,
        state: RoutingState,
        idle_timeout: float | None = None,
    ) -> None:
        self.state = state
        self.inner = inner
        self.first = first
        self.candidate = candidate
        self.ttft = ttft
        self.idle_timeout = idle_timeout
        self.reported = False

    @property
    def usage(self) -> Usage | None:
        return self.inner.usage

    def _report(self, ok: bool | None) -> None:
        # Opening the stream already counted as a success with its TTFT sample; the
        # end only releases the in-flight slot and reports a mid-stream failure.
        if not self.reported:
            self.reported = True
            self.state.end(self.candidate.id, ok=ok, breaker=self.candidate.breaker)

    async def _iterate(self) -> AsyncIterator[dict[str, Any]]:
        try:
            if self.first is not None:
                yield self.first
            iterator = self.inner.__aiter__()
            idle = self.idle_timeout
            if idle is None:
                async for chunk in iterator:
                    yield chunk
            else:
                watch = IdleWatch(idle)
                try:
                    while True:
                        watch.begin()
                        try:
                            chunk = await iterator.__anext__()
                        except StopAsyncIteration:
                            break
                        except asyncio.CancelledError:
                            if not watch.expired():
                                raise
                            await self.inner.aclose()
                            raise idle_error(idle) from None
                        finally:
                            watch.end()
                        yield chunk
                finally:
                    watch.close()
        except UpstreamError as exc:
            self._report(_breaker_outcome(exc))
            raise
        self._report(None)

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._iterate()

    async def aclose(self) -> None:
        self._report(None)
        await self.inner.aclose()


async def stream_once(
    ctx: RequestContext,
    http: httpx.AsyncClient,
    route: CompiledRoute,
    ordered: list[Candidate],
    body: dict[str, Any],
    *,
    budget: CallBudget | None = None,
    take: Take | None = None,
    give_back: GiveBack | None = None,
) -> TrackedStream:
    state = ctx.gateway.state

    async def call(candidate: Candidate) -> TrackedStream:
        adapter = get_adapter(candidate.deployment.provider_kind)
        started = time.perf_counter()
        deployment = candidate.deployment
        limit = ttft_timeout(route, deployment)
        stream: ChatStream | None = None
        try:
            async with asyncio.timeout(limit) as timer:
                stream = await adapter.open_stream(http, _target(ctx, deployment), _upstream_body(body, deployment))
                iterator = stream.__aiter__()
                try:
                    first = await iterator.__anext__()
                except StopAsyncIteration:
                    first = None
        except TimeoutError:
            if stream is not None:
                await stream.aclose()
            if not timer.expired():
                raise
            raise ttft_error(limit) from None
        except BaseException:
            if stream is not None:
                await stream.aclose()
            raise
        ttft = time.perf_counter() - started
        if ctx.ttft is None:
            ctx.ttft = ctx.elapsed()
        # The attempt loop must not close the books on a stream still running:
        # the TrackedStream reports its end instead.
        state.begin(candidate.id)
        return TrackedStream(
            _Resumed(stream, iterator),
            first,
            candidate,
            ttft,
            state=state,
            idle_timeout=idle_timeout(route, deployment),
        )

    return await attempts(
        ctx, route, ordered, call, measure=_measure_open, budget=budget, take=take, give_back=give_back
    )


def _measure_open(result: TrackedStream, seconds: float) -> tuple[float | None, float | None]:
    return None, result.ttft * 1000.0


class _Resumed:
    """A stream whose iterator was already started (its first chunk taken)."""

    def __init__(self, stream: ChatStream, iterator: AsyncIterator[dict[str, Any]]) -> None:
        self.stream = stream
        self.iterator = iterator

    @property
    def usage(self) -> Usage | None:
        return self.stream.usage

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self.iterator

    async def aclose(self) -> None:
        await self.stream.aclose()


async def stream_open(
    ctx: RequestContext,
    http: httpx.AsyncClient,
    plan: RoutePlan,
    body: dict[str, Any],
    *,
    take: Take | None = None,
    give_back: GiveBack | None = None,
) -> TrackedStream | Any:
    if plan.route.kind == "cascade":
        from routing.cascade.runner import cascade_stream

        return await cascade_stream(ctx, http, plan, body, take=take, give_back=give_back)
    return await with_fallbacks(
        ctx,
        plan,
        lambda route, ordered, budget: stream_once(
            ctx, http, route, ordered, body, budget=budget, take=take, give_back=give_back
        ),
    )
