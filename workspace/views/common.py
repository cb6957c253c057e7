"""What the workspace's pages share: the gateway of the serving process, the model picker."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError

from console.access import HtmxHttpRequest
from routing.facade import models_approved
from workspace.models import Persona
from workspace.selectors import model_allowlist, workspace_key_of, workspace_settings
from workspace.turns import models_offered, with_gateway


def serving_gateway(request: Any):
    """The serving process's gateway (ASGI), or None (then a short-lived one is opened)."""
    return getattr(request, "scope", {}).get("gatehouse.gateway")


def require_enabled(request: HtmxHttpRequest) -> None:
    if not workspace_settings(organization=request.organization).enabled:
        raise PermissionDenied("The workspace is turned off in this organization.")


@dataclass(frozen=True, slots=True)
class Picker:
    """The model picker: `offered` may be chosen; `refused` (name -> why) are shown disabled."""

    offered: list[str]
    refused: dict[str, str]


def model_picker(request: HtmxHttpRequest, persona: Persona | None = None, data_class: str = "") -> Picker:
    """The models the member may pick: what their key lists (as `GET /v1/models` does),
    chat-capable, within the workspace's and the persona's allow-lists and, for a
    conversation's `data_class`, approved by the compliance matrix. Reads only: with no
    workspace key yet (a POST issues it), nothing is offered."""
    key = workspace_key_of(organization=request.organization, user=request.user)
    if key is None:
        return Picker(offered=[], refused={})

    async def listed(gateway) -> tuple[list[str], set[str]]:
        names = await models_offered(gateway, key_id=key.api_key_id)
        catalog = gateway.snapshots.catalog
        catalog = catalog.for_organization(request.organization.id) if catalog is not None else None
        chat = []
        for name in names:
            info = catalog.model(name) if catalog is not None else None
            if info is None or "chat" in info.capabilities:
                chat.append(name)
        approved = set(chat)
        if data_class:
            approved = models_approved(
                gateway, organization_id=request.organization.pk, names=chat, data_class=data_class
            )
        return chat, approved

    names, approved = with_gateway(serving_gateway(request), listed)
    allowed = model_allowlist(organization=request.organization, persona=persona)
    names = [n for n in names if allowed is None or n in allowed]
    reason = f"not approved for {data_class} data"
    return Picker(offered=[n for n in names if n in approved], refused={n: reason for n in names if n not in approved})


def chat_models(request: HtmxHttpRequest, persona: Persona | None = None) -> list[str]:
    """The models offered before a conversation has a data class (its list, compare)."""
    return model_picker(request, persona).offered


def attachment_of(request: Any) -> tuple[str, str] | None:
    """The text file attached to a turn (name, text), or None; a clear ValidationError when
    it is not a readable text, Markdown, HTML or PDF file."""
    from workspace.knowledge import upload_text

    upload = request.FILES.get("attachment")
    if upload is None:
        return None
    try:
        return upload.name, upload_text(name=upload.name, data=upload.read())
    except ValidationError as exc:
        raise ValidationError(f"The attachment {upload.name} was not added: {' '.join(exc.messages)}") from exc
