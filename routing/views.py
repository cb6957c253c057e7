"""The `/v1` endpoints: thin views that string the pipeline stages together."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
from adrf.views import APIView
from django.conf import settings
from django.http import HttpResponse, StreamingHttpResponse

from console.keycache import KeyContext
from providers.adapters.base import ChatStream, UpstreamError, Usage
from providers.tokens import count_tokens, estimate_prompt_tokens, estimate_text_tokens
from routing.engine.listing import route_model_object, route_model_objects
from routing.errors import GatewayError, error_payload, error_response
from routing.pipeline.admit import admit, admit_deployments
from routing.pipeline.authenticate import authenticate
from routing.pipeline.call import chat_call, embeddings_call, stream_open
from routing.pipeline.classify import classify
from routing.pipeline.context import RequestContext, new_request_id
from routing.pipeline.route import route_order, route_resolve
from routing.pipeline.settle import gateway_headers, settle
from routing.pipeline.validate import parse_json, require_model, validate_chat, validate_embeddings
from routing.runtime import catalog, policies, runtime

logger = logging.getLogger(__name__)

JSON = "application/json"
TOO_LARGE_FLAG = "gatehouse.body_too_large"


class VirtualKeyAuthentication:
    """DRF authentication by virtual key; async, served from the key cache."""

    async def authenticate(self, request) -> tuple[None, KeyContext]:
        return None, await authenticate(request._request.headers.get("authorization"))

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="gatehouse"'


class SSEResponse(StreamingHttpResponse):
    """A server-sent-events response whose generator the gateway handler closes itself."""

    def __init__(self, events, headers: dict[str, str]) -> None:
        super().__init__(events, content_type="text/event-stream", headers=headers)
        self.events = events
        self["Cache-Control"] = "no-cache"
        self["X-Accel-Buffering"] = "no"


class GatewayView(APIView):
    """Base of the `/v1` views.

    adrf's stock dispatch runs `initial()` (authentication, permissions,
    throttles, negotiation) through `sync_to_async` — a thread hop on every
    request. This dispatch awaits the async authenticator directly and skips the
    steps the data plane does not use (the body is parsed by the pipeline).
    """

    authentication_classes = [VirtualKeyAuthentication]
    schema = None  # the data plane follows OpenAI's published API, not the management schema
    permission_classes: list = []
    parser_classes: list = []
    throttle_classes: list = []
    endpoint = ""

    async def async_dispatch(self, request, *args, **kwargs):
        request_id = new_request_id()
        request.META["gatehouse.request_id"] = request_id
        if settings.GATEHOUSE["STOCK_DRF_DISPATCH"]:
            response = await super().async_dispatch(request, *args, **kwargs)
        else:
            response = await self._fast_dispatch(request, *args, **kwargs)
        response["x-request-id"] = request_id
        return response

    async def _fast_dispatch(self, request, *args, **kwargs):
        self.args, self.kwargs = args, kwargs
        self.headers = {}
        drf_request = self.initialize_request(request, *args, **kwargs)
        self.request = drf_request
        try:
            for authenticator in drf_request.authenticators:
                result = await authenticator.authenticate(drf_request)
                if result is not None:
                    drf_request._authenticator = authenticator
                    drf_request.user, drf_request.auth = result
                    break
            handler = getattr(self, request.method.lower(), None)
            if handler is None:
                return self.method_not_allowed(request.method)
            return await handler(drf_request, *args, **kwargs)
        except Exception as exc:
            return self.handle_exception(exc)

    def method_not_allowed(self, method: str) -> HttpResponse:
        return error_response(
            GatewayError(f"Method {method} is not allowed here.", status=405, code="method_not_allowed")
        )

    def handle_exception(self, exc: Exception) -> HttpResponse:
        if isinstance(exc, GatewayError):
            return error_response(exc)
        logger.exception("unexpected error in %s", type(self).__name__)
        return error_response(
            GatewayError("The gateway failed to process the request.", status=500, type="server_error")
        )

    # -- helpers shared by the endpoints -------------------------------------------------

    def new_context(self, request) -> RequestContext:
        return RequestContext(request_id=request.META["gatehouse.request_id"], endpoint=self.endpoint, key=request.auth)

    def read_body(self, request, ctx: RequestContext) -> dict[str, Any]:
        if request.META.get(TOO_LARGE_FLAG):
            limit = settings.GATEHOUSE["MAX_BODY_BYTES"]
            raise GatewayError(
                f"The request body is larger than the {limit} bytes this gateway accepts.",
                status=413,
                code="request_too_large",
            )
        body = parse_json(request._request.body)
        model = body.get("model")
        if isinstance(model, str):
            ctx.model_requested = model
        self.attribute(request, ctx, body)
        return body

    def attribute(self, request, ctx: RequestContext, body: dict[str, Any]) -> None:
        headers = request._request.headers
        tags = list(ctx.key.tags)
        header_tags = headers.get("x-gatehouse-tags")
        if header_tags:
            tags.extend(t.strip() for t in header_tags.split(",") if t.strip() and t.strip() not in tags)
        ctx.tags = tags
        ctx.workflow = (headers.get("x-gatehouse-workflow") or "")[:200]
        user = body.get("user")
        if isinstance(user, str):
            ctx.end_user = user[:200]
        metadata = body.get("metadata")
        if isinstance(metadata, dict):
            ctx.metadata = {str(k): str(v) for k, v in metadata.items()}

    async def plan(self, request, ctx: RequestContext, body: dict[str, Any], *, capability: str):
        """The stages between validation and the call: classify, route, admit, order."""
        policy = policies.current.policy(ctx.key.organization_id)
        classify(ctx, policy, body, request._request.headers)
        plan = route_resolve(ctx, policy, body, capability=capability)
        # guard (in) takes its place here.
        await admit(ctx, body)
        plan = await route_order(ctx, plan)
        plan.ordered = await admit_deployments(ctx, plan.ordered, body)
        return plan

    def failed(self, ctx: RequestContext, exc: GatewayError | UpstreamError) -> HttpResponse:
        settle(ctx, status=exc.status, error_type=exc.type, error_code=exc.code or "", error_message=exc.message)
        response = HttpResponse(
            error_payload(exc.message, exc.type, exc.code, exc.param), status=exc.status, content_type=JSON
        )
        for name, value in gateway_headers(ctx).items():
            response[name] = value
        for name, value in getattr(exc, "headers", {}).items():
            response[name] = value
        return response

    def succeeded(self, ctx: RequestContext, payload: dict[str, Any]) -> HttpResponse:
        event = settle(ctx, status=200)
        response = HttpResponse(orjson.dumps(payload), content_type=JSON)
        for name, value in gateway_headers(ctx, event.cost).items():
            response[name] = value
        return response


class ChatCompletionsView(GatewayView):
    endpoint = "chat"

    async def post(self, request, *args, **kwargs):
        rt = await runtime()
        ctx = self.new_context(request)
        try:
            body = self.read_body(request, ctx)
            require_model(body)
            validate_chat(body)
            ctx.stream = bool(body.get("stream"))
            plan = await self.plan(request, ctx, body, capability="chat")
            if ctx.stream:
                options = body.get("stream_options") or {}
                ctx.include_usage = bool(options.get("include_usage"))
                stream = await stream_open(ctx, rt.http, plan, body)
                return SSEResponse(self.relay(ctx, stream, body), gateway_headers(ctx))
            result = await chat_call(ctx, rt.http, plan, body)
        except (GatewayError, UpstreamError) as exc:
            return self.failed(ctx, exc)
        except asyncio.CancelledError:
            settle(ctx, status=499, error_type="client_disconnected", error_message="The client went away.")
            raise
        ctx.usage = result.usage
        return self.succeeded(ctx, result.body)

    async def relay(self, ctx: RequestContext, stream: ChatStream, body: dict[str, Any]):
        """Relay upstream chunks as SSE; settle at the end, on error or on disconnect."""
        status, error_type, error_code, error_message = 200, "", "", ""
        text_parts: list[str] = []
        last: dict[str, Any] | None = None
        try:
            async for chunk in stream:
                if ctx.ttft is None:
                    ctx.ttft = ctx.elapsed()
                last = chunk
                for choice in chunk.get("choices") or ():
                    content = (choice.get("delta") or {}).get("content")
                    if content:
                        text_parts.append(content)
                yield b"data: " + orjson.dumps(chunk) + b"\n\n"
            if ctx.include_usage:
                usage = stream.usage or self.estimate(body, text_parts)
                yield b"data: " + orjson.dumps(self.usage_chunk(last, usage)) + b"\n\n"
            yield b"data: [DONE]\n\n"
        except UpstreamError as exc:
            status, error_type, error_code, error_message = exc.status, exc.type, exc.code or "", exc.message
            yield b"data: " + error_payload(exc.message, exc.type, exc.code, exc.param) + b"\n\n"
        except (asyncio.CancelledError, GeneratorExit):
            status, error_type, error_message = 499, "client_disconnected", "The client went away mid-stream."
            raise
        finally:
            await stream.aclose()
            ctx.usage = stream.usage or self.estimate(body, text_parts)
            settle(ctx, status=status, error_type=error_type, error_code=error_code, error_message=error_message)

    @staticmethod
    def estimate(body: dict[str, Any], text_parts: list[str]) -> Usage:
        return Usage(
            prompt_tokens=estimate_prompt_tokens(body.get("messages") or []),
            completion_tokens=count_tokens("".join(text_parts)),
            estimated=True,
        )

    @staticmethod
    def usage_chunk(last: dict[str, Any] | None, usage: Usage) -> dict[str, Any]:
        last = last or {}
        return {
            "id": last.get("id", ""),
            "object": "chat.completion.chunk",
            "created": last.get("created", int(time.time())),
            "model": last.get("model", ""),
            "choices": [],
            "usage": {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.prompt_tokens + usage.completion_tokens,
                "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
            },
        }


class EmbeddingsView(GatewayView):
    endpoint = "embeddings"

    async def post(self, request, *args, **kwargs):
        rt = await runtime()
        ctx = self.new_context(request)
        try:
            body = self.read_body(request, ctx)
            require_model(body)
            validate_embeddings(body)
            plan = await self.plan(request, ctx, body, capability="embeddings")
            result = await embeddings_call(ctx, rt.http, plan, body)
        except (GatewayError, UpstreamError) as exc:
            return self.failed(ctx, exc)
        except asyncio.CancelledError:
            settle(ctx, status=499, error_type="client_disconnected", error_message="The client went away.")
            raise
        usage = result.usage
        if not usage.prompt_tokens:
            usage = Usage(prompt_tokens=estimate_text_tokens(body.get("input")), estimated=True)
        ctx.usage = usage
        return self.succeeded(ctx, result.body)


def _model_object(model) -> dict[str, Any]:
    return {"id": model.name, "object": "model", "created": model.created, "owned_by": model.vendor}


class ModelsView(GatewayView):
    """`GET /v1/models`: the models this key may use that have a deployment."""

    endpoint = "models"

    async def get(self, request, *args, **kwargs):
        await runtime()
        ctx = self.new_context(request)
        key = ctx.key
        data = [
            _model_object(model)
            for name, model in sorted(catalog.current.models.items())
            if key.allows(name) and model.deployments_for(key.organization_id)
        ]
        policy = policies.current.policy(key.organization_id)
        data += route_model_objects(policy, key, exclude={entry["id"] for entry in data})
        data.sort(key=lambda entry: entry["id"])
        return self.succeeded(ctx, {"object": "list", "data": data})


class ModelDetailView(GatewayView):
    endpoint = "models"

    async def get(self, request, model: str, *args, **kwargs):
        await runtime()
        ctx = self.new_context(request)
        ctx.model_requested = model
        info = catalog.current.model(model)
        if info is None or not ctx.key.allows(model) or not info.deployments_for(ctx.key.organization_id):
            alias = route_model_object(policies.current.policy(ctx.key.organization_id), ctx.key, model)
            if alias is not None:
                return self.succeeded(ctx, alias)
            return self.failed(
                ctx,
                GatewayError(f"The model '{model}' does not exist", status=404, code="model_not_found", param="model"),
            )
        return self.succeeded(ctx, _model_object(info))


async def not_found(request, path: str = "") -> HttpResponse:
    response = error_response(
        GatewayError(
            f"Unknown path /v1/{path}. See /api/docs/ for what this gateway serves.", status=404, code="unknown_url"
        )
    )
    response["x-request-id"] = new_request_id()
    return response
