"""Stage 9 — settle: real cost from real usage, the usage record, gateway headers."""

from __future__ import annotations

from decimal import Decimal

from audit.facade import RequestLeaf, body_sha256
from budgets.facade import UsageEvent, cost_of
from routing.pipeline.admit import admission_headers, admission_settle
from routing.pipeline.context import RequestContext
from routing.pipeline.record import routing_headers, routing_record

ZERO = Decimal(0)
EMPTY_DIGEST = body_sha256(b"")


def _event(ctx: RequestContext, *, status: int, error_type: str, error_code: str, error_message: str) -> UsageEvent:
    """The record's identity, attribution and prices, without usage."""
    latency = ctx.elapsed()
    deployment = ctx.deployment
    model = ctx.model
    event = UsageEvent(
        request_id=ctx.request_id,
        created_at=ctx.created_at,
        organization_id=ctx.key.organization_id,
        team_id=ctx.key.team_id,
        user_id=ctx.key.user_id,
        key_id=ctx.key.key_id,
        endpoint=ctx.endpoint,
        stream=ctx.stream,
        model_requested=ctx.model_requested,
        model_used=model.name if model is not None and deployment is not None else "",
        deployment_id=deployment.id if deployment else None,
        deployment_name=deployment.name if deployment else "",
        provider_name=deployment.provider_name if deployment else "",
        attempts=ctx.attempts,
        status_code=status,
        error_type=error_type,
        error_code=error_code or "",
        error_message=error_message[:500],
        latency_ms=latency * 1000.0,
        ttft_ms=ctx.ttft * 1000.0 if ctx.ttft is not None else None,
        tags=ctx.tags,
        workflow=ctx.workflow,
        end_user=ctx.end_user,
        metadata=ctx.metadata if not ctx.attempt_trail else {**ctx.metadata, "attempt_trail": ctx.attempt_trail},
    )
    if deployment is not None and deployment.facts.record:
        event.deployment_facts = dict(deployment.facts.record)
    if model is not None:
        event.input_price = model.price.input
        event.output_price = model.price.output
        event.cached_input_price = model.price.cached_input
        _list_prices(event, model.catalog_price)
    return event


def _list_prices(event: UsageEvent, listed) -> None:
    """The catalog's list prices next to the contracted ones that applied."""
    event.list_input_price = listed.input
    event.list_output_price = listed.output
    event.list_cached_input_price = listed.cached_input


def usage_begin(ctx: RequestContext, *, prompt_tokens: int) -> None:
    """Journal the request as it leaves for the upstream: if this process dies before it
    settles, the next start records it from this entry (and the stream's progress)."""
    event = _event(ctx, status=0, error_type="", error_code="", error_message="")
    event.input_tokens = prompt_tokens
    event.tokens_estimated = True
    ctx.gateway.usage.begin(event)


def settle(
    ctx: RequestContext,
    *,
    status: int,
    error_type: str = "",
    error_code: str = "",
    error_message: str = "",
) -> UsageEvent:
    """Build the usage record for this request and queue it for the batch writer."""
    event = _event(ctx, status=status, error_type=error_type, error_code=error_code, error_message=error_message)
    usage = ctx.usage
    model = ctx.model
    latency = event.latency_ms / 1000.0
    if usage is not None and model is not None:
        event.input_tokens = usage.prompt_tokens
        event.output_tokens = usage.completion_tokens
        event.cached_tokens = usage.cached_tokens
        event.tokens_estimated = usage.estimated
        event.cache_write_5m_tokens = usage.cache_write_5m_tokens
        event.cache_write_1h_tokens = usage.cache_write_1h_tokens
        event.upstream_version = usage.upstream_version
        event.system_fingerprint = usage.system_fingerprint
        if usage.reasoning_tokens:  # the rollups read it from the record's metadata
            event.metadata = {**event.metadata, "reasoning_tokens": usage.reasoning_tokens}
        cost = cost_of(
            input_tokens=usage.prompt_tokens,
            output_tokens=usage.completion_tokens,
            cached_tokens=usage.cached_tokens,
            cache_write_5m_tokens=usage.cache_write_5m_tokens,
            cache_write_1h_tokens=usage.cache_write_1h_tokens,
            input_price=model.price.input,
            output_price=model.price.output,
            cached_input_price=model.price.cached_input,
        )
        event.input_cost = cost.input
        event.output_cost = cost.output
        event.cost = cost.total
        event.contracted_cost = cost.total
        listed, listed_cost = model.catalog_price, cost
        if listed != model.price:
            listed_cost = cost_of(
                input_tokens=usage.prompt_tokens,
                output_tokens=usage.completion_tokens,
                cached_tokens=usage.cached_tokens,
                cache_write_5m_tokens=usage.cache_write_5m_tokens,
                cache_write_1h_tokens=usage.cache_write_1h_tokens,
                input_price=listed.input,
                output_price=listed.output,
                cached_input_price=listed.cached_input,
            )
        event.list_input_cost, event.list_output_cost = listed_cost.input, listed_cost.output
        event.list_cost = listed_cost.total
        if usage.completion_tokens:
            generation = latency - (ctx.ttft or 0.0)
            if generation > 0:
                event.tokens_per_second = usage.completion_tokens / generation
    routing_record(ctx, event)
    found = ctx.guard_verdict
    verdict = found.as_dict() if found is not None and (found.entities or found.rules or found.injection) else None
    if verdict:
        event.metadata = {**event.metadata, "guard": verdict}
    gateway = ctx.gateway
    gateway.usage.add(event)
    admission_settle(ctx, event)
    gateway.telemetry.record(event)
    gateway.ledger.append_request(_leaf(ctx, event, verdict))
    if verdict and verdict.get("flagged"):
        gateway.review(organization_id=event.organization_id, request_id=event.request_id, verdict=ctx.guard_verdict)
    return event


def _leaf(ctx: RequestContext, event: UsageEvent, verdict: dict | None) -> RequestLeaf:
    """The request's leaf in its organization's transparency log: facts and digests only."""
    return RequestLeaf(
        request_id=event.request_id,
        at=event.created_at,
        organization_id=event.organization_id,
        key_id=event.key_id,
        key_prefix=ctx.key.prefix,
        user_id=event.user_id,
        model_requested=event.model_requested,
        model_used=event.model_used,
        deployment=event.deployment_name,
        status=event.status_code,
        input_tokens=event.input_tokens,
        output_tokens=event.output_tokens,
        cost=event.cost,
        data_class=ctx.data_class,
        request_sha256=ctx.request_digest or EMPTY_DIGEST,
        response_sha256=ctx.response_digest or EMPTY_DIGEST,
        guard=verdict,
    )


def gateway_headers(ctx: RequestContext, cost: Decimal | None = None) -> dict[str, str]:
    headers = {"x-request-id": ctx.request_id}
    if ctx.deployment is not None:
        headers["x-gatehouse-model"] = ctx.deployment.model_name
        headers["x-gatehouse-deployment"] = ctx.deployment.name
        headers["x-gatehouse-provider"] = ctx.deployment.provider_name
    if ctx.attempts:
        headers["x-gatehouse-attempts"] = str(ctx.attempts)
    if cost is not None:
        headers["x-gatehouse-cost"] = f"{cost:.10f}".rstrip("0").rstrip(".") if cost else "0"
    headers.update(admission_headers(ctx))
    headers.update(routing_headers(ctx))
    return headers
