"""The audit app's public function: other apps hand it events, it decides nothing."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.db import transaction

from audit.models import AuditEvent


def _digest(prev_hash: str, payload: dict[str, Any]) -> str:
    body = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


def audit_record(
    *, action: str, organization_id: int | None = None, actor: str = "", target: str = "", data: dict | None = None
) -> AuditEvent:
    """Append one event to the chain; each event's hash covers the previous one."""
    data = data or {}
    with transaction.atomic():
        last = AuditEvent.objects.select_for_update().order_by("-id").only("hash").first()
        prev_hash = last.hash if last else ""
        event = AuditEvent(
            organization_id=organization_id, actor=actor, action=action, target=target, data=data, prev_hash=prev_hash
        )
        payload = {
            "at": event.created_at.isoformat(),
            "org": organization_id,
            "actor": actor,
            "action": action,
            "target": target,
            "data": data,
        }
        event.hash = _digest(prev_hash, payload)
        event.save()
    return event
