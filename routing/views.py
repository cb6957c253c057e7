"""The `/v1` endpoints: parse, call the pipeline, render. Nothing else happens here.

The gateway ASGI handler hands each view the process's `Gateway` and the raw
body it read (`request.gateway`, `request.raw_body`); the stages themselves live
in `routing.pipeline`, which the workspace and evaluation runs call the same way.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import orjson
from adrf.views import APIView
from django.http import HttpResponse, StreamingHttpResponse

from console.keycache import KeyContext
from routing.errors import GatewayError, error_response
from routing.pipeline import run
from routing.pipeline.authenticate import authenticate, client_address
from routing.pipeline.context import RequestContext, new_request_id
from routing.pipeline.validate import parse_json

logger = logging.getLogger(__name__)

JSON = "application/json"
TOO_LARGE_FLAG = "gatehouse.body_too_large"


class VirtualKeyAuthentication:
    """DRF authentication by virtual key; async, served from the gateway's key cache."""

    async def authenticate(self, request) -> tuple[None, KeyContext]:
        django_request = request._request
        gateway = django_request.gateway
        client = client_address(
            django_request.META.get("REMOTE_ADDR"),
            django_request.headers.get("x-forwarded-for"),
            trusted=gateway.trusted_proxies,
        )
        context = await authenticate(
            django_request.headers.get("authorization"), client=client, keys=gateway.keys, limiter=gateway.auth_limiter
        )
        return None, context

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="gatehouse"'


class SSEResponse(StreamingHttpResponse):
    """A server-sent-events response whose generator the gateway handler closes itself."""

    def __init__(self, events, headers: dict[str, str]) -> None:
        super().__init__(events, content_type="text/event-stream", headers=headers)
        self.events = events
        self["Cache-Control"] = "no-cache"
        self["X-Accel-Buffering"] = "no"


def render(reply: run.Reply) -> HttpResponse:
    if reply.relay is not None:
        return SSEResponse(reply.relay.sse(), reply.headers)
    response = HttpResponse(reply.content or orjson.dumps(reply.payload), status=reply.status, content_type=JSON)
    for name, value in reply.headers.items():
        response[name] = value
    return response


class GatewayView(APIView):
    """Base of the `/v1` views.

    adrf's stock dispatch runs `initial()` (authentication, permissions,
    throttles, negotiation) through `sync_to_async` — a thread hop on every
    request. This dispatch awaits the async authenticator directly and skips the
    steps the data plane does not use (the body is parsed by the view).
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
        if request.gateway.conf.stock_drf_dispatch:
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
        finally:
            # DRF's request and this view refer to each other through `parser_context`:
            # break the cycle so the request is freed when it is done, not by the GC.
            drf_request.parser_context = None

    def method_not_allowed(self, method: str) -> HttpResponse:
        return error_response(
            GatewayError(f"Method {method} is not allowed here.", status=405, code="method_not_allowed")
        )

    def handle_exception(self, exc: Exception) -> HttpResponse:
        # Only failures before a request context exists land here (authentication);
        # everything after it is settled and answered by the pipeline.
        if isinstance(exc, GatewayError):
            return error_response(exc)
        logger.exception("unexpected error in %s", type(self).__name__)
        return error_response(run.internal_error())

    def context(self, request) -> RequestContext:
        django_request = request._request
        return RequestContext.new(
            django_request.gateway,
            request.auth,
            endpoint=self.endpoint,
            headers=django_request.headers,
            request_id=django_request.META["gatehouse.request_id"],
        )

    def body(self, request, ctx: RequestContext) -> dict[str, Any] | run.Reply:
        """The parsed JSON body, or the settled error reply when it cannot be read."""
        django_request = request._request
        gateway = django_request.gateway
        if django_request.META.get(TOO_LARGE_FLAG):
            limit = gateway.conf.max_body_bytes
            return run.reject(
                gateway,
                ctx,
                GatewayError(
                    f"The request body is larger than the {limit} bytes this gateway accepts.",
                    status=413,
                    code="request_too_large",
                ),
            )
        raw = getattr(django_request, "raw_body", b"")
        ctx.request_digest = hashlib.sha256(raw).hexdigest()
        try:
            return parse_json(raw)
        except GatewayError as exc:
            return run.reject(gateway, ctx, exc)


class ChatCompletionsView(GatewayView):
    endpoint = "chat"

    async def post(self, request, *args, **kwargs):
        ctx = self.context(request)
        body = self.body(request, ctx)
        if isinstance(body, run.Reply):
            return render(body)
        return render(await run.chat(ctx.gateway, ctx, body))


class EmbeddingsView(GatewayView):
    endpoint = "embeddings"

    async def post(self, request, *args, **kwargs):
        ctx = self.context(request)
        body = self.body(request, ctx)
        if isinstance(body, run.Reply):
            return render(body)
        return render(await run.embeddings(ctx.gateway, ctx, body))


class ModelsView(GatewayView):
    """`GET /v1/models`: the models this key may use that have a deployment."""

    endpoint = "models"

    async def get(self, request, *args, **kwargs):
        ctx = self.context(request)
        return render(await run.models(ctx.gateway, ctx))


class ModelDetailView(GatewayView):
    endpoint = "models"

    async def get(self, request, model: str, *args, **kwargs):
        ctx = self.context(request)
        return render(await run.model_detail(ctx.gateway, ctx, model))


async def not_found(request, path: str = "") -> HttpResponse:
    response = error_response(
        GatewayError(
            f"Unknown path /v1/{path}. See /api/docs/ for what this gateway serves.", status=404, code="unknown_url"
        )
    )
    response["x-request-id"] = new_request_id()
    return response
