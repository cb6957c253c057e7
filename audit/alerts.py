"""A failed verification is an alert: an audit event, an error in the log, and e-mail to the
organization's owners and admins (the e-mail channel budget alerts use)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail

from audit.models import Log, Verification
from console.models import MANAGER_ROLES, Membership

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
    recipients = sorted(
        {
            email
            for email in Membership.objects.filter(
                organization_id=log.organization_id, role__in=MANAGER_ROLES
            ).values_list("user__email", flat=True)
            if email
        }
    )
    if recipients:
        send_mail(
            subject=f"Gatehouse: the integrity check of {log.origin} failed",
            message="The ledger verification found:\n\n" + "\n".join(f"- {p}" for p in problems),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=recipients,
            fail_silently=True,
        )
