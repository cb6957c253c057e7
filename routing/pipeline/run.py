"""The callable pipeline: `chat`, `chat_stream`, `embeddings`, `models`.

The `/v1` views, the workspace, evaluation runs and tests all call these with a
`Gateway` and a `RequestContext` (an authenticated key) and get a `Reply` back:
an OpenAI payload or an OpenAI-shaped error, the gateway headers and, for a
stream, a relay to iterate. Nothing here raises for a request's own failure —
every exit path, an unexpected exception included, ends in exactly one usage
record and the budget hold settled or released.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from providers.facade import UpstreamError, Usage, estimate_text_tokens
from routing.engine.listing import route_model_object, route_model_objects
from routing.errors import GatewayError
from routing.pipeline.admit import DeploymentLimits, admit
from routing.pipeline.call import chat_call, embeddings_call
from routing.pipeline.classify import classify
from routing.pipeline.context import RequestContext
from routing.pipeline.relay import StreamRelay
from routing.pipeline.route import RoutePlan, route_order, route_resolve
from routing.pipeline.settle import gateway_headers, settle, usage_begin
from routing.pipeline.streams import stream_open
from routing.pipeline.validate import require_model, validate_chat, validate_embeddings

if TYPE_CHECKING:
    from routing.gateway import Gateway

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Reply:
    """What the pipeline answers: a payload (or an error payload), status and headers.

    For an open stream `relay` is set and `payload` is empty: iterate the relay
    (`relay.sse()` for bytes, `relay.chunks()` for dicts); it settles when it ends.
    """

    status: int
    payload: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    relay: StreamRelay | None = None
    content: bytes = b""  # the payload as sent (its digest is in the ledger leaf)

    @property
    def ok(self) -> bool:
        return self.status < 400


def error_body(exc: GatewayError | UpstreamError) -> dict[str, Any]:
    return {"error": {"message": exc.message, "type": exc.type, "param": exc.param, "code": exc.code}}


def internal_error() -> GatewayError:
    return GatewayError("The gateway failed to process the request.", status=500, type="server_error", code="internal")


def settle_safely(ctx: RequestContext, **outcome: Any) -> Any:
    """Settle, and if building the record itself fails, still release the hold and keep a
    minimal record: a bug in accounting must never leave a request unrecorded."""
    try:
        return settle(ctx, **outcome)
    except Exception:
        logger.exception("settling %s failed; recording it without usage", ctx.request_id)
        ctx.usage = None
        try:
            return settle(
                ctx,
                status=outcome.get("status", 500),
                error_type=outcome.get("error_type") or "server_error",
                error_code="settlement_failed",
                error_message="The gateway could not account this request's usage.",
            )
        except Exception:
            logger.exception("recording %s failed twice", ctx.request_id)
            return None


def _sent(ctx: RequestContext, payload: dict[str, Any]) -> bytes:
    """The response body as it will be sent; its digest goes into the ledger leaf."""
    content = orjson.dumps(payload)
    ctx.response_digest = hashlib.sha256(content).hexdigest()
    return content


def reject(gateway: Gateway, ctx: RequestContext, exc: GatewayError | UpstreamError) -> Reply:
    """End a request with an error: its record, its hold released, the error reply."""
    payload = error_body(exc)
    content = _sent(ctx, payload)
    settle_safely(ctx, status=exc.status, error_type=exc.type, error_code=exc.code or "", error_message=exc.message)
    headers = gateway_headers(ctx)
    headers.update(getattr(exc, "headers", None) or {})
    return Reply(status=exc.status, payload=payload, headers=headers, content=content)


def _answer(ctx: RequestContext, payload: dict[str, Any]) -> Reply:
    content = _sent(ctx, payload)
    event = settle_safely(ctx, status=200)
    return Reply(
        status=200, payload=payload, headers=gateway_headers(ctx, event.cost if event else None), content=content
    )


def attribute(ctx: RequestContext, body: dict[str, Any]) -> None:
    """Who and what the request is for: tags, workflow, end user, metadata."""
    model = body.get("model")
    if isinstance(model, str):
        ctx.model_requested = model
    if not ctx.request_digest:  # called without HTTP: the digest of the body as given
        ctx.request_digest = hashlib.sha256(orjson.dumps(body)).hexdigest()
    headers = ctx.headers
    tags = list(ctx.key.tags)
    header_tags = headers.get("x-gatehouse-tags")
    if header_tags:
        for tag in header_tags.split(","):
            tag = tag.strip()[:100]
            if tag and tag not in tags:
                tags.append(tag)
    ctx.tags = tags[:32]
    ctx.workflow = (headers.get("x-gatehouse-workflow") or "")[:200]
    user = body.get("user")
    if isinstance(user, str):
        ctx.end_user = user[:200]
    metadata = body.get("metadata")
    if isinstance(metadata, dict):
        ctx.metadata = {str(k): str(v) for k, v in metadata.items()}


def guard_in(gateway: Gateway, ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
    """Stage 4 — guard (in): PII tokenized or masked, content and injection policies.
    Returns the body to send upstream (the original is untouched) or raises the refusal."""
    key = ctx.key
    inbound = gateway.guard.inbound(
        organization_id=key.organization_id,
        team_id=key.team_id,
        key_id=key.key_id,
        data_class=ctx.data_class,
        endpoint=ctx.endpoint,
        body=body,
        conversation=ctx.headers.get("x-gatehouse-conversation") or None,
    )
    ctx.guard = inbound
    ctx.guard_verdict = inbound.verdict
    if inbound.refusal is not None:
        raise guard_refusal(inbound.refusal)
    return inbound.body


def guard_refusal(refusal) -> GatewayError:
    return GatewayError(
        refusal.message, status=refusal.status, type=refusal.type, code=refusal.code, param=refusal.param
    )


async def plan(
    gateway: Gateway, ctx: RequestContext, body: dict[str, Any], *, capability: str
) -> tuple[RoutePlan, dict[str, Any]]:
    """The stages between validation and the call: classify, guard, route, admit, order.
    Returns the plan and the body to send upstream (as the guard left it)."""
    policy = gateway.snapshots.routing.policy(ctx.key.organization_id)
    classify(ctx, policy, body, ctx.headers)
    upstream_body = guard_in(gateway, ctx, body)
    route_plan = route_resolve(ctx, policy, body, capability=capability)
    body = upstream_body
    await admit(ctx, body, route_plan)
    route_plan = await route_order(ctx, route_plan)
    ctx.deployment_limits = DeploymentLimits(ctx)
    return route_plan, body


async def _guarded(gateway: Gateway, ctx: RequestContext, work) -> Reply:
    """Run `work()`; turn every failure into a settled error reply."""
    try:
        return await work()
    except (GatewayError, UpstreamError) as exc:
        return reject(gateway, ctx, exc)
    except asyncio.CancelledError:
        settle_safely(ctx, status=499, error_type="client_disconnected", error_message="The client went away.")
        raise
    except Exception:
        logger.exception("unexpected error in the %s pipeline (%s)", ctx.endpoint, ctx.request_id)
        return reject(gateway, ctx, internal_error())


async def chat(gateway: Gateway, ctx: RequestContext, body: dict[str, Any]) -> Reply:
    """A chat completion, answered whole (a `stream: true` body is answered by `chat_stream`)."""
    if body.get("stream") is True:
        return await chat_stream(gateway, ctx, body)

    async def work() -> Reply:
        attribute(ctx, body)
        require_model(body)
        validate_chat(body)
        route_plan, upstream = await plan(gateway, ctx, body, capability="chat")
        usage_begin(ctx, prompt_tokens=ctx.prompt_estimate)
        limits = ctx.deployment_limits
        result = await chat_call(ctx, gateway.http, route_plan, upstream, take=limits.take, give_back=limits.give_back)
        ctx.usage = result.usage
        outbound = gateway.guard.outbound(ctx.guard, result.body)  # guard (out): restore, output rules
        ctx.guard_verdict = outbound.verdict
        if outbound.refusal is not None:
            raise guard_refusal(outbound.refusal)
        return _answer(ctx, outbound.payload)

    return await _guarded(gateway, ctx, work)


async def chat_stream(gateway: Gateway, ctx: RequestContext, body: dict[str, Any]) -> Reply:
    """A streamed chat completion: on success the reply carries the relay to iterate."""

    async def work() -> Reply:
        attribute(ctx, body)
        require_model(body)
        validate_chat(body)
        ctx.stream = True
        options = body.get("stream_options") or {}
        ctx.include_usage = bool(options.get("include_usage"))
        route_plan, upstream_body = await plan(gateway, ctx, body, capability="chat")
        usage_begin(ctx, prompt_tokens=ctx.prompt_estimate)
        limits = ctx.deployment_limits
        upstream = await stream_open(
            ctx, gateway.http, route_plan, upstream_body, take=limits.take, give_back=limits.give_back
        )
        guard = gateway.guard.stream(ctx.guard)  # guard (out), chunk by chunk
        if guard.passthrough:
            guard = None  # nothing to restore and no output rule: chunks go out as they come
        relay = StreamRelay(gateway, ctx, upstream, body, settle=settle_safely, guard=guard)
        return Reply(status=200, payload={}, headers=gateway_headers(ctx), relay=relay)

    return await _guarded(gateway, ctx, work)


async def embeddings(gateway: Gateway, ctx: RequestContext, body: dict[str, Any]) -> Reply:
    async def work() -> Reply:
        attribute(ctx, body)
        require_model(body)
        validate_embeddings(body)
        route_plan, upstream = await plan(gateway, ctx, body, capability="embeddings")
        usage_begin(ctx, prompt_tokens=ctx.prompt_estimate)
        limits = ctx.deployment_limits
        result = await embeddings_call(
            ctx, gateway.http, route_plan, upstream, take=limits.take, give_back=limits.give_back
        )
        usage = result.usage
        if not usage.prompt_tokens:
            usage = Usage(prompt_tokens=estimate_text_tokens(body.get("input")), estimated=True)
        ctx.usage = usage
        return _answer(ctx, result.body)

    return await _guarded(gateway, ctx, work)


def _model_object(model) -> dict[str, Any]:
    return {"id": model.name, "object": "model", "created": model.created, "owned_by": model.vendor}


async def models(gateway: Gateway, ctx: RequestContext) -> Reply:
    """`GET /v1/models`: the models this key may use that have a deployment, and its route aliases."""

    async def work() -> Reply:
        key = ctx.key
        catalog = gateway.snapshots.catalog.for_organization(key.organization_id)
        data = [
            _model_object(model)
            for name, model in sorted(catalog.models.items())
            if key.allows(name) and model.deployments_for(key.organization_id)
        ]
        policy = gateway.snapshots.routing.policy(key.organization_id)
        data += route_model_objects(policy, key, exclude={entry["id"] for entry in data})
        data.sort(key=lambda entry: entry["id"])
        return _answer(ctx, {"object": "list", "data": data})

    return await _guarded(gateway, ctx, work)


async def model_detail(gateway: Gateway, ctx: RequestContext, name: str) -> Reply:
    async def work() -> Reply:
        ctx.model_requested = name
        key = ctx.key
        info = gateway.snapshots.catalog.for_organization(key.organization_id).model(name)
        if info is None or not key.allows(name) or not info.deployments_for(key.organization_id):
            alias = route_model_object(gateway.snapshots.routing.policy(key.organization_id), key, name)
            if alias is not None:
                return _answer(ctx, alias)
            raise GatewayError(f"The model '{name}' does not exist", status=404, code="model_not_found", param="model")
        return _answer(ctx, _model_object(info))

    return await _guarded(gateway, ctx, work)
