"""Stage 7 — call: try the ordered candidates until one answers, then fall back.

Within a route: retryable failures (429, 5xx, timeouts, connection errors) wait
an exponential, jittered backoff and go to the next candidate, coming back round
to deployments that failed retryably while attempts remain; failures that are
the deployment's own (its credentials, an unknown upstream model) skip it for
this request; the client's mistakes (400s) end the route. Every outcome feeds the
deployment's latency average and circuit breaker.

Across routes: when a route fails, its fallback for the error's class — context
window exceeded, content policy, or any — takes over, once per route.

Streams move on only before the first chunk: `stream_open` reads the first chunk
before returning, so a stream that fails at once still falls back, and the
client has received nothing but headers until then.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import httpx

from providers.adapters import get_adapter
from providers.adapters.base import ChatResult, ChatStream, EmbeddingResult, UpstreamError, Usage
from providers.snapshot import DeploymentInfo
from routing.conf import routing_conf
from routing.engine.snapshot import Candidate, CompiledRoute
from routing.engine.state import routing_state
from routing.errors import GatewayError
from routing.pipeline.context import RequestContext
from routing.pipeline.route import RoutePlan, candidates_order, eligible

T = TypeVar("T")
FALLBACK_CODES = {"context_length_exceeded": "context_length", "content_policy_violation": "content_policy"}


def _upstream_body(body: dict[str, Any], deployment: DeploymentInfo) -> dict[str, Any]:
    return {**body, "model": deployment.target.upstream_model}


def error_class(exc: UpstreamError | GatewayError) -> str:
    return FALLBACK_CODES.get(exc.code or "", "any")


def _client_fault(exc: UpstreamError) -> bool:
    return exc.status == 400 and not exc.retryable


def _breaker_outcome(exc: UpstreamError) -> bool | None:
    """False when the failure is the deployment's (feeds the breaker), None when it is the request's."""
    return None if _client_fault(exc) else False


def _record_failure(ctx: RequestContext, candidate: Candidate, exc: UpstreamError) -> None:
    ctx.attempt_trail.append(
        {
            "deployment": candidate.deployment.name,
            "status": exc.upstream_status or exc.status,
            "error": exc.code or exc.type,
            "message": exc.message[:200],
        }
    )


def backoff_delay(retry: int, *, base: float, cap: float, retry_after: float | None = None) -> float:
    """Full jitter: uniform(0, min(cap, base * 2**(retry-1))), at least a short Retry-After."""
    delay = random.uniform(0.0, min(cap, base * (2 ** (retry - 1))))
    if retry_after is not None and 0 < retry_after <= cap:
        delay = max(delay, retry_after)
    return delay


def no_healthy(route: CompiledRoute) -> GatewayError:
    return GatewayError(
        f"Every deployment of `{route.name}` is cooling down after repeated failures; try again shortly.",
        status=503,
        type="service_unavailable",
        code="no_healthy_deployment",
        param="model",
    )


async def attempts(
    ctx: RequestContext,
    route: CompiledRoute,
    ordered: list[Candidate],
    call: Callable[[Candidate], Awaitable[T]],
    *,
    measure: Callable[[T, float], tuple[float | None, float | None]] | None = None,
) -> T:
    """Try `ordered` (cycling back to retryable failures) until one answers."""
    if not ordered:
        raise no_healthy(route)
    conf = routing_conf()
    limit = route.max_attempts or conf.max_attempts
    state = routing_state()
    dropped: set[int] = set()
    failed: set[int] = set()
    last: UpstreamError | None = None
    made = 0
    index = 0
    while made < limit:
        pool = [c for c in ordered if c.id not in dropped]
        if not pool:
            break
        # First every candidate once, then round again over those that failed retryably.
        fresh = [c for c in pool if c.id not in failed]
        candidate = fresh[0] if fresh else pool[index % len(pool)]
        if not fresh:
            index += 1
        if made:
            await asyncio.sleep(
                backoff_delay(
                    made,
                    base=conf.retry_backoff,
                    cap=conf.retry_backoff_max,
                    retry_after=getattr(last, "retry_after", None),
                )
            )
        made += 1
        ctx.attempts += 1
        ctx.deployment = candidate.deployment
        ctx.model = candidate.model
        state.begin(candidate.id)
        started = time.perf_counter()
        try:
            result = await call(candidate)
        except UpstreamError as exc:
            state.end(candidate.id, ok=_breaker_outcome(exc), breaker=candidate.breaker)
            _record_failure(ctx, candidate, exc)
            last = exc
            if _client_fault(exc):
                raise
            failed.add(candidate.id)
            if not exc.retryable:
                dropped.add(candidate.id)
            continue
        except BaseException:
            state.end(candidate.id, ok=None, breaker=candidate.breaker)
            raise
        if measure is None:
            state.end(candidate.id, ok=True, breaker=candidate.breaker)
        else:
            latency, ttft = measure(result, time.perf_counter() - started)
            state.end(candidate.id, ok=True, breaker=candidate.breaker, latency=latency, ttft=ttft)
        return result
    if last is None:
        raise no_healthy(route)
    raise last


async def with_fallbacks(
    ctx: RequestContext,
    plan: RoutePlan,
    run: Callable[[CompiledRoute, list[Candidate]], Awaitable[T]],
) -> T:
    """Run the plan's route; on failure follow its fallback for the error's class."""
    route, ordered = plan.route, plan.ordered
    visited = {route.name}
    conf = routing_conf()
    while True:
        try:
            return await run(route, ordered)
        except (UpstreamError, GatewayError) as exc:
            if isinstance(exc, GatewayError) and exc.code != "no_healthy_deployment":
                raise
            reason = error_class(exc)
            target = route.fallbacks.get(reason) or route.fallbacks.get("any")
            if target is None or target in visited or len(visited) > conf.max_fallbacks:
                raise
            following = plan.policy.destination(target)
            if following is None or following.kind == "cascade":
                raise
            found, _ = eligible(plan.policy, following, data_class=ctx.data_class, capability=plan.capability)
            if not found:
                raise
            visited.add(target)
            ctx.routing.setdefault("fallbacks", []).append({"from": route.name, "to": target, "reason": reason})
            ctx.attempt_trail.append({"fallback": target, "reason": reason, "from": route.name})
            route, ordered = following, await candidates_order(ctx, plan, following, found)
            ctx.route = following.name


def _measure_chat(result: ChatResult, seconds: float) -> tuple[float | None, float | None]:
    tokens = max(result.usage.completion_tokens, 1)
    return seconds * 1000.0 / tokens, None


async def chat_once(
    ctx: RequestContext, http: httpx.AsyncClient, route: CompiledRoute, ordered: list[Candidate], body: dict[str, Any]
) -> ChatResult:
    async def call(candidate: Candidate) -> ChatResult:
        adapter = get_adapter(candidate.deployment.provider_kind)
        return await adapter.chat(http, candidate.deployment.target, _upstream_body(body, candidate.deployment))

    return await attempts(ctx, route, ordered, call, measure=_measure_chat)


async def chat_call(ctx: RequestContext, http: httpx.AsyncClient, plan: RoutePlan, body: dict[str, Any]) -> ChatResult:
    if plan.route.kind == "cascade":
        from routing.cascade.runner import cascade_run

        return await cascade_run(ctx, http, plan, body)
    return await with_fallbacks(ctx, plan, lambda route, ordered: chat_once(ctx, http, route, ordered, body))


class TrackedStream:
    """An open upstream stream whose first chunk has already arrived.

    Replays that chunk, then relays the rest; reports the outcome (TTFT sample or
    failure) to the routing state when the stream ends, however it ends.
    """

    def __init__(self, inner: ChatStream, first: dict[str, Any] | None, candidate: Candidate, ttft: float) -> None:
        self.inner = inner
        self.first = first
        self.candidate = candidate
        self.ttft = ttft
        self.reported = False

    @property
    def usage(self) -> Usage | None:
        return self.inner.usage

    def _report(self, ok: bool | None) -> None:
        # Opening the stream already counted as a success with its TTFT sample; the
        # end only releases the in-flight slot and reports a mid-stream failure.
        if not self.reported:
            self.reported = True
            routing_state().end(self.candidate.id, ok=ok, breaker=self.candidate.breaker)

    async def _iterate(self) -> AsyncIterator[dict[str, Any]]:
        try:
            if self.first is not None:
                yield self.first
            async for chunk in self.inner:
                yield chunk
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
    ctx: RequestContext, http: httpx.AsyncClient, route: CompiledRoute, ordered: list[Candidate], body: dict[str, Any]
) -> TrackedStream:
    state = routing_state()

    async def call(candidate: Candidate) -> TrackedStream:
        adapter = get_adapter(candidate.deployment.provider_kind)
        started = time.perf_counter()
        deployment = candidate.deployment
        stream = await adapter.open_stream(http, deployment.target, _upstream_body(body, deployment))
        iterator = stream.__aiter__()
        try:
            first = await iterator.__anext__()
        except StopAsyncIteration:
            first = None
        except BaseException:
            await stream.aclose()
            raise
        ttft = time.perf_counter() - started
        if ctx.ttft is None:
            ctx.ttft = ctx.elapsed()
        # The attempt loop must not close the books on a stream still running:
        # the TrackedStream reports its end instead.
        state.begin(candidate.id)
        return TrackedStream(_Resumed(stream, iterator), first, candidate, ttft)

    result = await attempts(ctx, route, ordered, call, measure=_measure_open)
    return result


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
    ctx: RequestContext, http: httpx.AsyncClient, plan: RoutePlan, body: dict[str, Any]
) -> TrackedStream | Any:
    if plan.route.kind == "cascade":
        from routing.cascade.runner import cascade_stream

        return await cascade_stream(ctx, http, plan, body)
    return await with_fallbacks(ctx, plan, lambda route, ordered: stream_once(ctx, http, route, ordered, body))


async def embeddings_call(
    ctx: RequestContext, http: httpx.AsyncClient, plan: RoutePlan, body: dict[str, Any]
) -> EmbeddingResult:
    async def once(route: CompiledRoute, ordered: list[Candidate]) -> EmbeddingResult:
        async def call(candidate: Candidate) -> EmbeddingResult:
            adapter = get_adapter(candidate.deployment.provider_kind)
            deployment = candidate.deployment
            return await adapter.embeddings(http, deployment.target, _upstream_body(body, deployment))

        return await attempts(ctx, route, ordered, call)

    return await with_fallbacks(ctx, plan, once)
