"""Celery wrappers: sealing, witness cosignatures, verification (each a thin call to a service)."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings


@shared_task(ignore_result=True)
def ledger_seal() -> int:
    from audit.services import ledger_seal as seal

    return sum(r.sealed for r in seal())


@shared_task(ignore_result=True)
def ledger_cosign() -> int:
    from audit.witnesses import cosignatures_collect

    return cosignatures_collect()


@shared_task(ignore_result=True)
def ledger_verify() -> list[int]:
    """Start a verification of every log whose last run is older than the interval."""
    from audit.services import verification_run, verifications_due

    ids = verifications_due(interval=settings.GATEHOUSE_LEDGER["VERIFY_INTERVAL"])
    for verification_id in ids:
        verification_run(verification_id=verification_id)
    return ids


@shared_task(ignore_result=True)
def ledger_verify_run(verification_id: int) -> str:
    from audit.services import verification_run

    return verification_run(verification_id=verification_id).status
