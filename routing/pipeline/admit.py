"""Stage 5 — admit: rate limits and a budget reservation across key, user, team and org at once.

The worst case of a request — its estimated prompt tokens plus `max_tokens` (or
the model's output cap when the request sets none), at the registry's prices —
is reserved on every applicable budget before anything is sent upstream; settle
replaces the hold by the real cost. The admission travels on the request context.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, TypeVar

from budgets import facade
from budgets.facade import UsageEvent, cost_of
from providers.facade import ModelInfo, estimate_prompt_tokens, estimate_text_tokens
from routing.conf import routing_conf
from routing.errors import GatewayError
from routing.pipeline.context import RequestContext
from routing.pipeline.route import RoutePlan, eligible

T = TypeVar("T")
FALLBACK_OUTPUT_CAP = 4096  # a model registered without an output cap


@dataclass(frozen=True, slots=True)
class WorstCase:
    cost: Decimal  # USD
    tokens: int  # what the tokens-per-minute limits are charged up front
    prompt: int = 0  # the estimated prompt tokens


def _positive_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _prompt_tokens(ctx: RequestContext, body: dict[str, Any]) -> int:
    if ctx.endpoint == "embeddings":
        return estimate_text_tokens(body.get("input"))
    prompt = estimate_prompt_tokens(body.get("messages") or [])
    if body.get("tools"):
        prompt += estimate_text_tokens(body.get("tools"))
    return prompt


def _asks_prompt_caching(body: dict[str, Any]) -> bool:
    """Whether any message (or content part) carries `cache_control`: cache writes bill
    the prompt at up to twice the input price."""
    for message in body.get("messages") or ():
        if not isinstance(message, dict):
            continue
        if "cache_control" in message:
            return True
        content = message.get("content")
        if isinstance(content, list) and any(isinstance(p, dict) and "cache_control" in p for p in content):
            return True
    return False


def _model_worst(
    model: ModelInfo, *, prompt: int, requested: int | None, choices: int, embeddings: bool, caching: bool = False
) -> Decimal:
    output = 0 if embeddings else (requested or model.max_output_tokens or FALLBACK_OUTPUT_CAP) * choices
    return cost_of(
        input_tokens=prompt,
        output_tokens=output,
        cached_tokens=0,
        cache_write_1h_tokens=prompt if caching else 0,
        input_price=model.price.input,
        output_price=model.price.output,
        cached_input_price=model.price.cached_input,
    ).total


def reachable_models(plan: RoutePlan, *, data_class: str) -> list[ModelInfo]:
    """Every model the plan may end up calling for its answer: the route's candidates and,
    transitively, those of every fallback route it may follow (cascades excluded, as the
    call stage never falls back into one)."""
    found: dict[str, ModelInfo] = {c.model.name: c.model for c in plan.candidates}
    seen = {plan.route.name}
    queue = list(plan.route.fallbacks.values())
    while queue and len(seen) <= routing_conf().max_fallbacks + 1:
        name = queue.pop(0)
        if name in seen:
            continue
        seen.add(name)
        route = plan.policy.destination(name)
        if route is None or route.kind == "cascade":
            continue
        candidates, _ = eligible(plan.policy, route, data_class=data_class, capability=plan.capability)
        for candidate in candidates:
            found.setdefault(candidate.model.name, candidate.model)
        queue.extend(route.fallbacks.values())
    return list(found.values())


def worst_case(ctx: RequestContext, body: dict[str, Any], plan: RoutePlan | None = None) -> WorstCase:
    """What the request may cost at most, on whichever model the plan can reach.

    A plain route or a fallback chain answers from one model: the worst case is the
    priciest of them. A cascade may call every layer (and a summary call) before it
    answers, and each of those calls is billed: the worst case is their sum.
    """
    embeddings = ctx.endpoint == "embeddings"
    prompt = _prompt_tokens(ctx, body)
    requested = None
    choices = 1
    rate_tokens = prompt
    if not embeddings:
        requested = _positive_int(body.get("max_completion_tokens")) or _positive_int(body.get("max_tokens"))
        choices = _positive_int(body.get("n")) or 1
        # Like OpenAI, the token limits count max_tokens when the request sets it; the
        # real count is trued up at settlement either way.
        rate_tokens = prompt + (requested * choices if requested else 0)

    caching = not embeddings and _asks_prompt_caching(body)

    def priced(model: ModelInfo) -> Decimal:
        return _model_worst(
            model, prompt=prompt, requested=requested, choices=choices, embeddings=embeddings, caching=caching
        )

    if plan is not None and plan.route.kind == "cascade":
        total = Decimal(0)
        for _layer, candidates in plan.layers:
            total += max(priced(c.model) for c in candidates)
        if plan.route.compress_model or plan.layers:
            summary = plan.policy.catalog.model(plan.route.compress_model) if plan.route.compress_model else None
            total += priced(summary) if summary is not None else max(priced(c.model) for c in plan.layers[0][1])
        return WorstCase(cost=total, tokens=rate_tokens, prompt=prompt)
    models = reachable_models(plan, data_class=ctx.data_class) if plan is not None else []
    if not models and ctx.model is not None:
        models = [ctx.model]
    if not models:  # nothing priced to reserve against (the route stage raises first in practice)
        return WorstCase(cost=Decimal(0), tokens=rate_tokens, prompt=prompt)
    return WorstCase(cost=max(priced(model) for model in models), tokens=rate_tokens, prompt=prompt)


def refusal_error(refusal: facade.Refusal, headers: tuple[tuple[str, str], ...] = ()) -> GatewayError:
    extra = dict(headers)
    if refusal.retry_after is not None:
        extra["retry-after"] = str(max(1, math.ceil(refusal.retry_after)))
    if refusal.kind == "budget":
        extra["x-should-retry"] = "false"  # OpenAI SDKs would retry a 429 otherwise
        extra["x-gatehouse-budget-scope"] = refusal.scope
        if refusal.resets_at is not None:
            extra["x-gatehouse-budget-reset"] = refusal.resets_at.isoformat()
        return GatewayError(
            refusal.message, status=429, type="insufficient_quota", code="budget_exceeded", headers=extra
        )
    return GatewayError(refusal.message, status=429, type=refusal.kind, code="rate_limit_exceeded", headers=extra)


def _unavailable(exc: facade.BudgetUnavailable) -> GatewayError:
    message = (
        exc.refusal.message
        if exc.refusal is not None
        else ("The gateway cannot check this request's budget right now; it was not sent. Please retry shortly.")
    )
    return GatewayError(
        message,
        status=503,
        type="service_unavailable",
        code=exc.code,
        headers={"retry-after": "1", "x-gatehouse-budget-store": exc.store},
    )


async def admit(ctx: RequestContext, body: dict[str, Any], plan: RoutePlan | None = None) -> None:
    """Reserve the worst case on every applicable budget and take from the rate limits, or raise 429."""
    need = worst_case(ctx, body, plan)
    ctx.prompt_estimate = need.prompt
    ctx.worst_tokens = need.tokens
    key = ctx.key
    try:
        admission = await ctx.gateway.budgets.admit(
            request_id=ctx.request_id,
            organization_id=key.organization_id,
            team_id=key.team_id,
            user_id=key.user_id,
            key_id=key.key_id,
            at=ctx.created_at,
            cost=need.cost,
            tokens=need.tokens,
        )
    except facade.BudgetUnavailable as exc:
        raise _unavailable(exc) from None
    if admission.refusal is not None:
        raise refusal_error(admission.refusal, admission.headers)
    if admission.degraded:
        # The organization chose to serve requests while its budget store is unreachable.
        ctx.response_headers["x-gatehouse-budget"] = "degraded"
    if admission is not facade.FREE:
        ctx.admission = admission
        if admission.hold is not None:
            ctx.gateway.holding[ctx.request_id] = admission  # renewed while the request runs


class DeploymentLimits:
    """Per-attempt deployment rate limits: the deployment that is about to be called is
    charged (`take`), and given back if it fails without answering, so the limit is
    charged to the deployment that answers — not to the first candidate with room."""

    __slots__ = ("budgets", "tokens", "taken", "refused")

    def __init__(self, ctx: RequestContext) -> None:
        self.budgets = ctx.gateway.budgets  # not the context, which holds this object
        self.tokens = ctx.worst_tokens or 0
        self.taken: dict[int, tuple[tuple[str, int], ...]] = {}
        self.refused = 0

    async def take(self, candidate) -> bool:
        try:
            ok, charged = await self.budgets.deployment_take(candidate.id, self.tokens)
        except facade.BudgetUnavailable as exc:
            raise _unavailable(exc) from None
        if not ok:
            self.refused += 1
            return False
        if charged:
            self.taken[candidate.id] = charged
        return True

    def give_back(self, candidate) -> None:
        charged = self.taken.pop(candidate.id, ())
        if charged:
            self.budgets.deployment_give_back(charged, tokens=self.tokens)

    def answered(self) -> tuple[tuple[str, int], ...]:
        """The buckets of the deployment that answered (trued up at settlement)."""
        found: tuple[tuple[str, int], ...] = ()
        for charged in self.taken.values():
            found += charged
        return found


def admission_settle(ctx: RequestContext, event: UsageEvent) -> None:
    """Settle the request's hold with its real cost and tokens (once, whatever path ends it)."""
    if ctx.admission_settled:
        return
    ctx.gateway.holding.pop(ctx.request_id, None)
    limits = ctx.deployment_limits
    extra = limits.answered() if limits is not None else ()
    if ctx.admission is None and not extra:
        return
    ctx.admission_settled = True
    admission = ctx.admission or replace(facade.FREE, tokens=limits.tokens)
    ctx.gateway.budgets.settle(
        admission=admission,
        cost=event.cost,
        tokens=event.input_tokens + event.output_tokens,
        failed=event.status_code >= 400,
        extra_buckets=extra,
    )


def admission_headers(ctx: RequestContext) -> tuple[tuple[str, str], ...]:
    return ctx.admission.headers if ctx.admission is not None else ()
