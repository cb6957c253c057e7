"""A failed verification is an alert: an audit event, an error in the log, and the
organization's alert channels (its signed webhook and e-mail, as budget alerts use),
reached through `gatehouse.signals.organization_alert` — the ledger imports no other app."""

from __future__ import annotations

import logging

from audit.models import Log, Verification
from gatehouse.signals import organization_alert

logger = logging.getLogger(__name__)


def integrity_alert(*, log: Log, verification: Verification) -> None:
    from audit.events import audit_record

    problems = verification.problems or []
    logger.error("ledger: verification of %s FAILED: %s", log.origin, "; ".join(problems))
    audit_record(
        action="ledger.verification_failed",
        organization_id=log.organization_id,
        actor="ledger",
        target=log.origin,
        data={"verification": verification.id, "problems": problems[:20]},
    )
    if log.organization_id is None:
        return
    organization_alert.send(
        sender=Verification,
        organization_id=log.organization_id,
        event="ledger.verification_failed",
        subject=f"Gatehouse: the integrity check of {log.origin} failed",
        text="The ledger verification found:\n\n" + "\n".join(f"- {p}" for p in problems),
        payload={"log": log.origin, "verification": verification.id, "problems": problems[:20]},
    )
