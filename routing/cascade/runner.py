"""Running a cascade route: layers cheapest first, escalating on a failed check.

Each layer is an ordinary route (a model's deployments or a named route) with
its own strategy, retries and outlier ejection. An answer that passes the layer's
validators is returned; one that does not is kept (in case every later layer
fails) and the request escalates, with older turns summarized once on the way
up. The client sees one normal OpenAI response; the headers and the usage
record say which layer answered and what each layer (and the summary) cost.

Streaming requests are answered by buffering: the cascade runs to an accepted
answer, which is then streamed as ordinary chunks.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import httpx

from budgets.facade import cost_of
from providers.facade import ChatResult, ModelInfo, UpstreamError, Usage
from routing.cascade.compress import compressed_messages, conversation_split, summary_request
from routing.cascade.validators import answer_check
from routing.pipeline.call import CallBudget, GiveBack, Take, call_budget, chat_once
from routing.pipeline.context import RequestContext
from routing.pipeline.route import RoutePlan, candidates_order, eligible


def _cost(model: ModelInfo, usage: Usage) -> Decimal:
    return cost_of(
        input_tokens=usage.prompt_tokens,
        output_tokens=usage.completion_tokens,
        cached_tokens=usage.cached_tokens,
        input_price=model.price.input,
        output_price=model.price.output,
        cached_input_price=model.price.cached_input,
    ).total


def _money(value: Decimal) -> str:
    return f"{value:.10f}".rstrip("0").rstrip(".") if value else "0"


async def _compress(
    ctx: RequestContext,
    http: httpx.AsyncClient,
    plan: RoutePlan,
    messages: list[dict[str, Any]],
    *,
    budget: CallBudget,
    take: Take | None,
    give_back: GiveBack | None,
) -> list[dict[str, Any]] | None:
    route = plan.route
    system, older, kept = conversation_split(messages, keep_turns=route.keep_turns)
    if not older:
        return None
    name = route.compress_model or plan.layers[0][0].name
    target = plan.policy.destination(name)
    if target is None:
        return None
    found, _ = eligible(plan.policy, target, data_class=ctx.data_class, capability="chat")
    if not found:
        return None
    ordered = await candidates_order(ctx, plan, target, found)
    record: dict[str, Any] = {"name": name, "turns": len(older)}
    ctx.routing["cascade"]["compression"] = record
    try:
        result = await chat_once(
            ctx,
            http,
            target,
            ordered,
            summary_request(older, model=name),
            budget=budget,
            take=take,
            give_back=give_back,
        )
    except UpstreamError as exc:
        record["error"] = exc.code or exc.type
        return None
    summary = ((result.body.get("choices") or [{}])[0].get("message") or {}).get("content") or ""
    if not summary:
        return None
    record.update(
        model=ctx.model.name,
        input_tokens=result.usage.prompt_tokens,
        output_tokens=result.usage.completion_tokens,
        cost=_money(_cost(ctx.model, result.usage)),
    )
    ctx.prior_calls.append((ctx.model, result.usage))
    return compressed_messages(system, summary, kept)


def _finish(ctx: RequestContext, layer: int, accepted: bool) -> None:
    cascade = ctx.routing["cascade"]
    cascade["answered_by"] = layer
    cascade["accepted"] = accepted
    costs = [f"{entry['name']}={entry.get('cost', '0')}" for entry in cascade["layers"]]
    if "cost" in cascade.get("compression", {}):
        costs.append(f"compress:{cascade['compression']['name']}={cascade['compression']['cost']}")
    ctx.response_headers["x-gatehouse-cascade-layer"] = str(layer)
    ctx.response_headers["x-gatehouse-cascade-accepted"] = "true" if accepted else "false"
    ctx.response_headers["x-gatehouse-cascade-costs"] = ";".join(costs)


async def cascade_run(
    ctx: RequestContext,
    http: httpx.AsyncClient,
    plan: RoutePlan,
    body: dict[str, Any],
    *,
    take: Take | None = None,
    give_back: GiveBack | None = None,
) -> ChatResult:
    """Run the layers within one budget: the cascade route's deadline and attempts
    cover every layer and the summary; when they are spent, escalation stops."""
    budget = call_budget(ctx, plan.route)
    layers_meta: list[dict[str, Any]] = []
    ctx.routing["cascade"] = {"route": plan.route.name, "layers": layers_meta}
    messages = body.get("messages") or []
    compressed = False
    kept: tuple[int, ChatResult, ModelInfo] | None = None  # the best rejected answer so far
    last_error: UpstreamError | None = None
    final = len(plan.layers)
    for number, (layer, candidates) in enumerate(plan.layers, start=1):
        if number > 1 and (budget.attempts_left <= 0 or budget.remaining() <= 0):
            ctx.routing["cascade"]["stopped"] = "budget"
            break
        ordered = await candidates_order(ctx, plan, layer.route, candidates)
        entry: dict[str, Any] = {"layer": number, "name": layer.name}
        layers_meta.append(entry)
        try:
            result = await chat_once(
                ctx,
                http,
                layer.route,
                ordered,
                {**body, "messages": messages},
                budget=budget,
                take=take,
                give_back=give_back,
            )
        except UpstreamError as exc:
            entry["error"] = exc.code or exc.type
            last_error = exc
        else:
            reason = answer_check(layer.validators, body, result.body)
            model = ctx.model
            entry.update(
                model=model.name,
                deployment=ctx.deployment.name,
                input_tokens=result.usage.prompt_tokens,
                output_tokens=result.usage.completion_tokens,
                cost=_money(_cost(model, result.usage)),
                accepted=reason is None,
            )
            if reason is None or number == final:
                if reason is not None:
                    entry["reason"] = reason
                _finish(ctx, number, reason is None)
                return result
            entry["reason"] = reason
            ctx.prior_calls.append((model, result.usage))
            kept = (number, result, model)
        if number < final and not compressed:
            compressed = True
            shorter = await _compress(ctx, http, plan, messages, budget=budget, take=take, give_back=give_back)
            if shorter is not None:
                messages = shorter
    if kept is not None:
        # Every later layer failed: the best rejected answer beats an error.
        number, result, model = kept
        ctx.prior_calls.remove((model, result.usage))
        ctx.model = model
        _finish(ctx, number, False)
        return result
    assert last_error is not None
    ctx.routing["cascade"]["answered_by"] = None
    raise last_error


class BufferedStream:
    """A finished answer replayed as `chat.completion.chunk` events."""

    def __init__(self, result: ChatResult) -> None:
        self.result = result
        self.usage: Usage | None = result.usage

    async def _chunks(self):
        body = self.result.body
        base = {
            "id": body.get("id", ""),
            "object": "chat.completion.chunk",
            "created": body.get("created", int(time.time())),
            "model": body.get("model", ""),
        }
        for choice in body.get("choices") or []:
            message = choice.get("message") or {}
            delta: dict[str, Any] = {"role": "assistant", "content": message.get("content")}
            if message.get("tool_calls"):
                delta["tool_calls"] = [{"index": i, **call} for i, call in enumerate(message["tool_calls"])]
            index = choice.get("index", 0)
            yield {**base, "choices": [{"index": index, "delta": delta, "finish_reason": None}]}
            yield {**base, "choices": [{"index": index, "delta": {}, "finish_reason": choice.get("finish_reason")}]}

    def __aiter__(self):
        return self._chunks()

    async def aclose(self) -> None:
        return None


async def cascade_stream(
    ctx: RequestContext,
    http: httpx.AsyncClient,
    plan: RoutePlan,
    body: dict[str, Any],
    *,
    take: Take | None = None,
    give_back: GiveBack | None = None,
) -> BufferedStream:
    request = {key: value for key, value in body.items() if key not in ("stream", "stream_options")}
    result = await cascade_run(ctx, http, plan, request, take=take, give_back=give_back)
    return BufferedStream(result)
