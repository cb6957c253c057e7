"""The streamed turn: server-sent events read by static/js/workspace.js."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from asgiref.sync import sync_to_async
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse

from routing.facade import gateway_open
from workspace.models import Conversation
from workspace.selectors import workspace_settings
from workspace.turns import turn_events
from workspace.views.common import attachment_of, serving_gateway


def _frame(event: dict) -> bytes:
    return b"data: " + json.dumps(event).encode() + b"\n\n"


def _owned(request: HttpRequest, user, pk: int) -> bool:
    organization = getattr(request, "organization", None)
    if organization is None or not workspace_settings(organization=organization).enabled:
        return False
    return Conversation.objects.filter(pk=pk, organization=organization, user=user).exists()


async def conversation_turn(request: HttpRequest, pk: int) -> HttpResponse:
    if request.method != "POST":
        return JsonResponse({"error": "POST a message."}, status=405)
    user = await request.auser()
    if not user.is_authenticated:
        return JsonResponse({"error": "Sign in first."}, status=401)
    if not await sync_to_async(_owned)(request, user, pk):
        return JsonResponse({"error": "No such conversation."}, status=404)
    try:
        attachment = await sync_to_async(attachment_of)(request)
    except ValidationError as exc:
        error = " ".join(exc.messages)

        async def refused() -> AsyncIterator[bytes]:
            yield _frame({"type": "error", "content": error})

        return StreamingHttpResponse(refused(), content_type="text/event-stream", headers={"Cache-Control": "no-cache"})
    arguments = {
        "conversation_id": pk,
        "user_id": user.pk,
        "content": request.POST.get("content", ""),
        "model": request.POST.get("model", ""),
        "regenerate": request.POST.get("regenerate") == "1",
        "edit_of": int(request.POST["edit"]) if request.POST.get("edit", "").isdigit() else None,
        "attachment": attachment,
    }
    serving = serving_gateway(request)

    async def events() -> AsyncIterator[bytes]:
        gateway = serving
        owned = None
        if gateway is None:
            gateway = owned = await gateway_open()
        try:
            async for event in turn_events(gateway, **arguments):
                yield _frame(event)
        except (ValidationError, PermissionDenied) as exc:
            text = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
            yield _frame({"type": "error", "content": text})
        finally:
            if owned is not None:
                await owned.stop()

    return StreamingHttpResponse(
        events(), content_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
