"""Helpers the routing console views share."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError

from budgets.clock import SettableClock
from console.access import HtmxHttpRequest, is_manager
from routing.engine.state import RoutingState, routing_state_from_settings
from routing.models import PolicyVersion
from routing.selectors import policy_document, policy_head, policy_live, policy_pending


def head_context(request: HtmxHttpRequest) -> dict[str, Any]:
    """What every routing page shows: the document being edited and whether it is live."""
    org = request.organization
    head = policy_head(organization=org)
    live = policy_live(organization=org)
    return {
        "document": policy_document(head),
        "head": head,
        "live": live,
        "pending_count": policy_pending(organization=org).count(),
        "can_manage": is_manager(request),
        "requires_approval": bool(live and live.document["settings"]["require_approval"]),
    }


def announce(request: HtmxHttpRequest, version: PolicyVersion) -> None:
    if version.state == "live":
        messages.success(request, f"{version.summary}: live as v{version.number}.")
    else:
        messages.info(
            request, f"{version.summary}: proposed as v{version.number}, waiting for a second admin's approval."
        )


def error_text(exc: ValidationError) -> list[str]:
    return list(exc.messages)


def live_state(request: HtmxHttpRequest) -> RoutingState:
    """The routing state of the gateway serving this page (what its traffic has seen);
    outside a gateway process, the state the settings describe (shared when on Redis)."""
    gateway = getattr(request, "scope", {}).get("gatehouse.gateway")
    if gateway is not None:
        return gateway.state
    return routing_state_from_settings(settings.GATEHOUSE, redis_url=settings.REDIS_URL, clock=SettableClock())
