"""An ASGI handler for `/v1` that never hands work to a thread.

Django's `ASGIHandler` sends the request_started / request_finished signals and
closes each response through `sync_to_async` (a thread hop per request, ~0.6 ms),
and runs the whole middleware stack. The data plane touches no database per
request, so this handler skips the signals, runs no middleware and resolves the
URL with Django's own resolver. It still uses Django's request and response
classes so the views are ordinary Django/DRF views.
"""

from __future__ import annotations

import asyncio
import io
import logging
from typing import TYPE_CHECKING

from django.core.handlers.asgi import ASGIRequest
from django.http import HttpResponse
from django.urls import Resolver404, get_resolver, set_urlconf

from routing.errors import error_payload
from routing.views import TOO_LARGE_FLAG

if TYPE_CHECKING:
    from routing.gateway import Gateway

logger = logging.getLogger(__name__)


class RequestAborted(Exception):
    pass


def _internal_error() -> HttpResponse:
    return HttpResponse(
        error_payload("The gateway failed to process the request.", "server_error"),
        status=500,
        content_type="application/json",
    )


async def _send_unavailable(send) -> None:
    body = error_payload("The gateway is starting or cannot reach its database.", "service_unavailable")
    headers = [(b"content-type", b"application/json"), (b"retry-after", b"1")]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class GatewayASGIHandler:
    """Serves `/v1` with the process's `Gateway` (which it starts on first use when the
    server sends no lifespan events)."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.max_body = gateway.conf.max_body_bytes
        self.resolver = get_resolver()

    async def __call__(self, scope, receive, send) -> None:
        try:
            body, too_large = await self._read_body(receive)
        except RequestAborted:
            return
        try:
            await self.gateway.ready()
        except Exception:
            logger.exception("the gateway could not start")
            await _send_unavailable(send)
            return
        # The view reads the body from `raw_body`, never `request.body`, so Django's
        # DATA_UPLOAD_MAX_MEMORY_SIZE (meant for console forms) does not apply: the
        # gateway's own limit was enforced while reading.
        request = ASGIRequest(scope, io.BytesIO(b""))
        request.raw_body = body
        request.gateway = self.gateway
        if too_large:
            request.META[TOO_LARGE_FLAG] = True
        process = asyncio.ensure_future(self._respond(request, send))
        listen = asyncio.ensure_future(self._listen_for_disconnect(receive))
        await asyncio.wait((process, listen), return_when=asyncio.FIRST_COMPLETED)
        if not process.done():
            # The client went away before the answer was complete: cancel it, which
            # stops the upstream call and lets the view settle the usage record.
            process.cancel()
        listen.cancel()
        # Both are waited for without raising in this frame: an exception raised here
        # would reference the frame, the frame the tasks and a task the exception, and
        # that cycle (the whole request with it) would wait for the garbage collector.
        await asyncio.wait((process, listen))
        for task in (process, listen):
            if not task.cancelled() and task.exception() is not None:
                logger.error("gateway handler task failed", exc_info=task.exception())

    async def _read_body(self, receive) -> tuple[bytes, bool]:
        chunks: list[bytes] = []
        size = 0
        too_large = False
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise RequestAborted
            chunk = message.get("body", b"")
            if chunk and not too_large:
                size += len(chunk)
                if size > self.max_body:
                    # Keep draining so the answer can still be sent, but drop the bytes.
                    too_large = True
                    chunks = []
                else:
                    chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return (b"".join(chunks) if len(chunks) != 1 else chunks[0]), too_large

    async def _listen_for_disconnect(self, receive) -> None:
        """Returns when the client goes away (or, with some servers, once the answer is sent)."""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return

    async def _get_response(self, request) -> HttpResponse:
        set_urlconf(None)
        try:
            match = self.resolver.resolve(request.path_info)
        except Resolver404:
            from routing.views import not_found

            return await not_found(request, request.path_info.removeprefix("/v1/"))
        request.resolver_match = match
        try:
            return await match.func(request, *match.args, **match.kwargs)
        except Exception:
            logger.exception("unhandled error in the gateway view")
            return _internal_error()

    async def _respond(self, request, send) -> None:
        response = await self._get_response(request)
        headers = [(name.encode("latin1"), value.encode("latin1")) for name, value in response.items()]
        await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
        events = getattr(response, "events", None)
        if events is None:
            await send({"type": "http.response.body", "body": response.content})
            return
        try:
            async for part in events:
                await send({"type": "http.response.body", "body": part, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await events.aclose()
