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

from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpResponse
from django.urls import Resolver404, get_resolver, set_urlconf

from routing.errors import error_payload
from routing.views import TOO_LARGE_FLAG

logger = logging.getLogger(__name__)


class RequestAborted(Exception):
    pass


def _internal_error() -> HttpResponse:
    return HttpResponse(
        error_payload("The gateway failed to process the request.", "server_error"),
        status=500,
        content_type="application/json",
    )


class GatewayASGIHandler:
    def __init__(self) -> None:
        self.max_body = settings.GATEHOUSE["MAX_BODY_BYTES"]
        self.resolver = get_resolver()

    async def __call__(self, scope, receive, send) -> None:
        try:
            body, too_large = await self._read_body(receive)
        except RequestAborted:
            return
        request = ASGIRequest(scope, io.BytesIO(body))
        if too_large:
            request.META[TOO_LARGE_FLAG] = True
        process = asyncio.ensure_future(self._respond(request, send))
        listen = asyncio.ensure_future(self._listen_for_disconnect(receive))
        done, _ = await asyncio.wait((process, listen), return_when=asyncio.FIRST_COMPLETED)
        if process not in done:
            # The client went away before the answer was complete: cancel it, which
            # stops the upstream call and lets the view settle the usage record.
            process.cancel()
        else:
            listen.cancel()
        for task in (process, listen):
            try:
                await task
            except (asyncio.CancelledError, RequestAborted):
                pass
            except Exception:
                logger.exception("gateway handler task failed")

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
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise RequestAborted

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
