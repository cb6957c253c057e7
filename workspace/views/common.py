"""What the workspace's pages share: the gateway of the serving process, the model picker."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied

from console.access import HtmxHttpRequest
from workspace.models import Persona
from workspace.selectors import model_allowlist, workspace_settings
from workspace.services import workspace_key_ensure
from workspace.turns import models_offered, with_gateway


def serving_gateway(request: Any):
    """The serving process's gateway (ASGI), or None (then a short-lived one is opened)."""
    return getattr(request, "scope", {}).get("gatehouse.gateway")


def require_enabled(request: HtmxHttpRequest) -> None:
    if not workspace_settings(organization=request.organization).enabled:
        raise PermissionDenied("The workspace is turned off in this organization.")


def chat_models(request: HtmxHttpRequest, persona: Persona | None = None) -> list[str]:
    """The models the member may pick: what their key lists (as `GET /v1/models` does),
    chat-capable, within the workspace's and the persona's allow-lists."""
    key = workspace_key_ensure(organization=request.organization, user=request.user)

    async def listed(gateway) -> list[str]:
        names = await models_offered(gateway, key_id=key.api_key_id)
        catalog = gateway.snapshots.catalog
        chat = []
        for name in names:
            info = catalog.model(name) if catalog is not None else None
            if info is None or "chat" in info.capabilities:
                chat.append(name)
        return chat

    names = with_gateway(serving_gateway(request), listed)
    allowed = model_allowlist(organization=request.organization, persona=persona)
    return [n for n in names if allowed is None or n in allowed]
