"""Stage 7 — call: try the ordered candidates until one answers, then fall back.

Within a route: retryable failures (429, 5xx, timeouts, connection errors) wait
an exponential, jittered backoff and go to the next candidate, coming back round
to deployments that failed retryably while attempts remain; failures that are
the deployment's own (its credentials, an unknown upstream model) skip it for
this request; the client's mistakes (400s) end the route. Every outcome feeds the
deployment's latency average and its outlier-ejection window.

Across routes: when a route fails, its fallback for the error's class — context
window exceeded, content policy, or any — takes over, once per route.

Every request has one `CallBudget`: a deadline for the whole request (every
attempt, backoff and fallback; 504 `request_deadline_exceeded` when spent) and a
number of attempts across the route and its fallbacks. One attempt is bounded by
its deployment's `timeout`; a stream must send its first chunk within the TTFT
timeout (else the attempt fails with 504 `ttft_timeout`, retryable) and, once
started, may not go silent for longer than the idle timeout (the iterator then
raises 504 `stream_idle_timeout`).

Streams move on only before the first chunk: `stream_open` reads the first chunk
before returning, so a stream that fails at once still falls back, and the
client has received nothing but headers until then.

Deployment rate limits hook in through two optional callbacks: `take(candidate)`
before each attempt (False: skip that deployment for this request) and
`give_back(candidate)` when that attempt ends without an answer.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import httpx

from providers.facade import (
    ChatResult,
    DeploymentInfo,
    EmbeddingResult,
    Target,
    UpstreamError,
    forwardable_headers,
    get_adapter,
)
from routing.conf import routing_conf
from routing.engine.snapshot import Candidate, CompiledRoute
from routing.errors import GatewayError
from routing.pipeline.context import RequestContext
from routing.pipeline.route import RoutePlan, candidates_order, eligible

T = TypeVar("T")
FALLBACK_CODES = {"context_length_exceeded": "context_length", "content_policy_violation": "content_policy"}

Take = Callable[[Candidate], Awaitable[bool]]
GiveBack = Callable[[Candidate], None]


@dataclass(slots=True)
class CallBudget:
    """What one request may still spend upstream: time until `deadline_at`
    (perf_counter seconds) and `attempts_left` across the route and its fallbacks."""

    deadline: float  # seconds, as configured
    deadline_at: float
    attempts_total: int
    attempts_left: int

    def remaining(self) -> float:
        return self.deadline_at - time.perf_counter()

    def expired(self, ctx: RequestContext) -> GatewayError:
        ctx.routing["deadline_exceeded"] = self.deadline
        return GatewayError(
            f"The request did not complete within its deadline of {self.deadline:g}s "
            "(every attempt and fallback included).",
            status=504,
            type="timeout",
            code="request_deadline_exceeded",
        )


def call_budget(ctx: RequestContext, route: CompiledRoute) -> CallBudget:
    """The budget of a request routed to `route`, counted from the request's arrival."""
    conf = routing_conf()
    deadline = route.deadline or conf.request_deadline
    total = route.max_attempts_total or conf.max_attempts_total
    return CallBudget(deadline=deadline, deadline_at=ctx.started + deadline, attempts_total=total, attempts_left=total)


def ttft_timeout(route: CompiledRoute, deployment: DeploymentInfo) -> float:
    """The tighter of the route's and the deployment's TTFT timeouts, else the gateway
    default; never longer than the deployment's own `timeout` (which bounds every wait
    for the upstream, and is not also armed on each socket read: see `_http.py`)."""
    found = [v for v in (route.ttft_timeout, deployment.ttft_timeout) if v]
    return min(min(found) if found else routing_conf().ttft_timeout, deployment.target.timeout)


def idle_timeout(route: CompiledRoute, deployment: DeploymentInfo) -> float:
    """The tighter of the route's and the deployment's idle timeouts, else the gateway
    default; never longer than the deployment's own `timeout`."""
    found = [v for v in (route.stream_idle_timeout, deployment.stream_idle_timeout) if v]
    return min(min(found) if found else routing_conf().stream_idle_timeout, deployment.target.timeout)


def _upstream_body(body: dict[str, Any], deployment: DeploymentInfo) -> dict[str, Any]:
    return {**body, "model": deployment.target.upstream_model}


def _target(ctx: RequestContext, deployment: DeploymentInfo) -> Target:
    """The deployment's target, plus the client headers its provider lets through (none
    unless the operator allowed some); the provider's own headers and credentials win."""
    if not deployment.forward_headers or not ctx.headers:
        return deployment.target
    forwarded = forwardable_headers(deployment.forward_headers, ctx.headers)
    if not forwarded:
        return deployment.target
    target = deployment.target
    own = {name.lower() for name, _ in target.extra_headers}
    extra = tuple((name, value) for name, value in forwarded.items() if name not in own) + target.extra_headers
    return replace(target, extra_headers=extra)


def error_class(exc: UpstreamError | GatewayError) -> str:
    return FALLBACK_CODES.get(exc.code or "", "any")


def _client_fault(exc: UpstreamError) -> bool:
    return exc.status == 400 and not exc.retryable


def _breaker_outcome(exc: UpstreamError) -> bool | None:
    """False when the failure is the deployment's (feeds ejection), None when it is the request's."""
    return None if _client_fault(exc) else False


def _record_failure(ctx: RequestContext, candidate: Candidate, exc: UpstreamError | GatewayError) -> None:
    ctx.attempt_trail.append(
        {
            "deployment": candidate.deployment.name,
            "status": getattr(exc, "upstream_status", None) or exc.status,
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
        f"No deployment of `{route.name}` can take this request right now; try again shortly.",
        status=503,
        type="service_unavailable",
        code="no_healthy_deployment",
        param="model",
    )


class DeploymentsAtLimit(GatewayError):
    """Every candidate deployment of a route is at its own rate limit (a fallback may serve)."""


def at_limit(route: CompiledRoute) -> GatewayError:
    return DeploymentsAtLimit(
        f"Rate limit reached for every deployment of `{route.name}` (each is at its requests or tokens "
        "per minute); try again shortly.",
        status=429,
        type="requests",
        code="rate_limit_exceeded",
        param="model",
        headers={"retry-after": "1"},
    )


async def attempts(
    ctx: RequestContext,
    route: CompiledRoute,
    ordered: list[Candidate],
    call: Callable[[Candidate], Awaitable[T]],
    *,
    measure: Callable[[T, float], tuple[float | None, float | None]] | None = None,
    budget: CallBudget | None = None,
    take: Take | None = None,
    give_back: GiveBack | None = None,
) -> T:
    """Try `ordered` (cycling back to retryable failures) until one answers, within
    the route's attempts and the request's budget (time and attempts)."""
    if not ordered:
        raise no_healthy(route)
    conf = routing_conf()
    if budget is None:
        budget = call_budget(ctx, route)
    limit = route.max_attempts or conf.max_attempts
    state = ctx.gateway.state
    dropped: set[int] = set()
    failed: set[int] = set()
    limited = False
    last: UpstreamError | None = None
    made = 0
    index = 0
    while made < limit:
        if budget.attempts_left <= 0:
            ctx.routing["retry_budget_exhausted"] = budget.attempts_total
            break
        pool = [c for c in ordered if c.id not in dropped]
        if not pool:
            break
        # First every candidate once, then round again over those that failed retryably.
        fresh = [c for c in pool if c.id not in failed]
        candidate = fresh[0] if fresh else pool[index % len(pool)]
        if not fresh:
            index += 1
        if made:
            delay = backoff_delay(
                made,
                base=conf.retry_backoff,
                cap=conf.retry_backoff_max,
                retry_after=getattr(last, "retry_after", None),
            )
            await asyncio.sleep(max(0.0, min(delay, budget.remaining())))
        if budget.remaining() <= 0:
            raise budget.expired(ctx)
        if take is not None and not await take(candidate):
            # At this deployment's own limit: skip it for this request.
            limited = True
            dropped.add(candidate.id)
            ctx.routing.setdefault("limited", []).append(candidate.deployment.name)
            continue
        made += 1
        budget.attempts_left -= 1
        ctx.attempts += 1
        ctx.deployment = candidate.deployment
        ctx.model = candidate.model
        state.begin(candidate.id)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(budget.remaining()) as deadline:
                result = await call(candidate)
        except TimeoutError:
            if not deadline.expired():
                state.end(candidate.id, ok=None, breaker=candidate.breaker)
                if give_back is not None:
                    give_back(candidate)
                raise
            # The request's deadline struck during this attempt: the deployment was too slow.
            error = budget.expired(ctx)
            state.end(candidate.id, ok=False, breaker=candidate.breaker)
            _record_failure(ctx, candidate, error)
            if give_back is not None:
                give_back(candidate)
            raise error from None
        except UpstreamError as exc:
            state.end(candidate.id, ok=_breaker_outcome(exc), breaker=candidate.breaker)
            _record_failure(ctx, candidate, exc)
            if give_back is not None:
                give_back(candidate)
            last = exc
            if _client_fault(exc):
                raise
            failed.add(candidate.id)
            if not exc.retryable:
                dropped.add(candidate.id)
            continue
        except BaseException:
            state.end(candidate.id, ok=None, breaker=candidate.breaker)
            if give_back is not None:
                give_back(candidate)
            raise
        if measure is None:
            state.end(candidate.id, ok=True, breaker=candidate.breaker)
        else:
            latency, ttft = measure(result, time.perf_counter() - started)
            state.end(candidate.id, ok=True, breaker=candidate.breaker, latency=latency, ttft=ttft)
        return result
    if last is None:
        raise at_limit(route) if limited else no_healthy(route)
    raise last


async def with_fallbacks(
    ctx: RequestContext,
    plan: RoutePlan,
    run: Callable[[CompiledRoute, list[Candidate], CallBudget], Awaitable[T]],
    *,
    budget: CallBudget | None = None,
) -> T:
    """Run the plan's route; on failure follow its fallback for the error's class,
    while the request's budget (deadline and attempts) lasts."""
    route, ordered = plan.route, plan.ordered
    budget = budget or call_budget(ctx, route)
    visited = {route.name}
    conf = routing_conf()
    while True:
        try:
            return await run(route, ordered, budget)
        except (UpstreamError, GatewayError) as exc:
            if isinstance(exc, GatewayError) and not (
                exc.code == "no_healthy_deployment" or isinstance(exc, DeploymentsAtLimit)
            ):
                raise
            reason = error_class(exc)
            target = route.fallbacks.get(reason) or route.fallbacks.get("any")
            if target is None or target in visited or len(visited) > conf.max_fallbacks:
                raise
            if budget.attempts_left <= 0:
                ctx.routing["retry_budget_exhausted"] = budget.attempts_total
                raise
            if budget.remaining() <= 0:
                raise budget.expired(ctx) from exc
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
    ctx: RequestContext,
    http: httpx.AsyncClient,
    route: CompiledRoute,
    ordered: list[Candidate],
    body: dict[str, Any],
    *,
    budget: CallBudget | None = None,
    take: Take | None = None,
    give_back: GiveBack | None = None,
) -> ChatResult:
    async def call(candidate: Candidate) -> ChatResult:
        adapter = get_adapter(candidate.deployment.provider_kind)
        return await adapter.chat(http, _target(ctx, candidate.deployment), _upstream_body(body, candidate.deployment))

    return await attempts(
        ctx, route, ordered, call, measure=_measure_chat, budget=budget, take=take, give_back=give_back
    )


async def chat_call(
    ctx: RequestContext,
    http: httpx.AsyncClient,
    plan: RoutePlan,
    body: dict[str, Any],
    *,
    take: Take | None = None,
    give_back: GiveBack | None = None,
) -> ChatResult:
    if plan.route.kind == "cascade":
        from routing.cascade.runner import cascade_run

        return await cascade_run(ctx, http, plan, body, take=take, give_back=give_back)
    return await with_fallbacks(
        ctx,
        plan,
        lambda route, ordered, budget: chat_once(
            ctx, http, route, ordered, body, budget=budget, take=take, give_back=give_back
        ),
    )


async def embeddings_call(
    ctx: RequestContext,
    http: httpx.AsyncClient,
    plan: RoutePlan,
    body: dict[str, Any],
    *,
    take: Take | None = None,
    give_back: GiveBack | None = None,
) -> EmbeddingResult:
    async def once(route: CompiledRoute, ordered: list[Candidate], budget: CallBudget) -> EmbeddingResult:
        async def call(candidate: Candidate) -> EmbeddingResult:
            adapter = get_adapter(candidate.deployment.provider_kind)
            deployment = candidate.deployment
            return await adapter.embeddings(http, _target(ctx, deployment), _upstream_body(body, deployment))

        return await attempts(ctx, route, ordered, call, budget=budget, take=take, give_back=give_back)

    return await with_fallbacks(ctx, plan, once)
