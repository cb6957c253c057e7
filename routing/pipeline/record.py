"""What routing adds to the usage record and the response headers.

The record's metadata names the route, the policy version, the matched rule,
the data class (and which detectors fired — never the values), the fallbacks
taken and, for a cascade, every layer's model, tokens and cost. A cascade's cost
is the sum of all its calls: the calls before the accepted answer are added to
the answering call's tokens and cost here, before the record is queued, and the
record lists every call (`routing.calls`: model, tokens and the prices that
applied) so that its cost can be recomputed from the record alone.
"""

from __future__ import annotations

from decimal import Decimal

from budgets.facade import UsageEvent, cost_of
from routing.pipeline.context import RequestContext


def routing_record(ctx: RequestContext, event: UsageEvent) -> None:
    """Add routing facts to the record. An organization that has configured no policy
    keeps today's records: the route then is just the model (no version, no extras)."""
    routing: dict = {}
    if ctx.route and (ctx.policy_version or ctx.routing or ctx.detected):
        routing["route"] = ctx.route
        routing["policy_version"] = ctx.policy_version
    if ctx.rule:
        routing["rule"] = ctx.rule
    if ctx.data_class and routing:
        routing["data_class"] = ctx.data_class
    if ctx.detected:
        routing["detected"] = list(ctx.detected)
    routing.update(ctx.routing)
    if ctx.prior_calls:
        calls = [_call(model, usage) for model, usage in ctx.prior_calls]
        if ctx.model is not None and ctx.usage is not None:
            calls.append(_call(ctx.model, ctx.usage))
        routing["calls"] = calls
        extra_input = extra_output = list_input = list_output = Decimal(0)
        for model, usage in ctx.prior_calls:
            cost = _cost(model, usage)
            extra_input += cost.input
            extra_output += cost.output
            listed = _cost(model, usage, listed=True)
            list_input += listed.input
            list_output += listed.output
            event.input_tokens += usage.prompt_tokens
            event.output_tokens += usage.completion_tokens
            event.cached_tokens += usage.cached_tokens
            event.cache_write_5m_tokens += usage.cache_write_5m_tokens
            event.cache_write_1h_tokens += usage.cache_write_1h_tokens
        event.input_cost += extra_input
        event.output_cost += extra_output
        event.cost += extra_input + extra_output
        if event.contracted_cost is not None:
            event.contracted_cost += extra_input + extra_output
        if event.list_cost is not None:
            event.list_input_cost += list_input
            event.list_output_cost += list_output
            event.list_cost += list_input + list_output
    if routing:
        event.metadata = {**event.metadata, "routing": routing}


def _plain(value: Decimal) -> str:
    return f"{value:f}"


def _cost(model, usage, *, listed: bool = False):
    price = model.catalog_price if listed else model.price
    return cost_of(
        input_tokens=usage.prompt_tokens,
        output_tokens=usage.completion_tokens,
        cached_tokens=usage.cached_tokens,
        cache_write_5m_tokens=usage.cache_write_5m_tokens,
        cache_write_1h_tokens=usage.cache_write_1h_tokens,
        input_price=price.input,
        output_price=price.output,
        cached_input_price=price.cached_input,
    )


def _call(model, usage) -> dict[str, str | int]:
    """One upstream call as the record keeps it: enough to recompute its cost exactly."""
    cost = _cost(model, usage)
    return {
        "model": model.name,
        "input_tokens": usage.prompt_tokens,
        "output_tokens": usage.completion_tokens,
        "cached_tokens": usage.cached_tokens,
        "cache_write_5m_tokens": usage.cache_write_5m_tokens,
        "cache_write_1h_tokens": usage.cache_write_1h_tokens,
        "input_price": _plain(model.price.input),
        "output_price": _plain(model.price.output),
        "cached_input_price": _plain(model.price.cached_input),
        "cost": _plain(cost.total),
    }


def routing_headers(ctx: RequestContext) -> dict[str, str]:
    headers = dict(ctx.response_headers)
    if ctx.route:
        headers["x-gatehouse-route"] = ctx.route
        if ctx.policy_version:
            headers["x-gatehouse-policy-version"] = str(ctx.policy_version)
    if ctx.data_class:
        headers["x-gatehouse-data-classification"] = ctx.data_class
    return headers
