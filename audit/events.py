"""The audit app's public function for control-plane changes: other apps hand it events.

Each event is kept as an `AuditEvent` row (the details, for the console) and becomes a
leaf of its organization's log (who, what, and the digest of the details), sealed with
the request leaves."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.db import transaction

from audit.leaves import event_leaf_json
from audit.models import AuditEvent, LeafKind, PendingLeaf


def _digest(prev_hash: str, payload: dict[str, Any]) -> str:
    body = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


def audit_record(
    *, action: str, organization_id: int | None = None, actor: str = "", target: str = "", data: dict | None = None
) -> AuditEvent:
    """Append one event to the chain and to the organization's ledger."""
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
        PendingLeaf.objects.create(
            organization_id=organization_id,
            entry_id=f"event:{event.id}",
            kind=LeafKind.EVENT,
            created_at=event.created_at,
            data=event_leaf_json(
                event_id=event.id,
                at=event.created_at,
                organization_id=organization_id,
                actor=actor,
                action=action,
                target=target,
                data=data,
            ),
        )
    return event
