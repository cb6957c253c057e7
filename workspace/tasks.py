"""Thin Celery wrappers over workspace services."""

from __future__ import annotations

from celery import shared_task

from workspace.services import conversations_expire


@shared_task(name="workspace.conversations_expire")
def conversations_expire_task() -> int:
    """Delete conversations past their organization's retention (run daily by beat)."""
    return conversations_expire()


@shared_task(name="workspace.document_ingest")
def document_ingest_task(document_id: int, key_id: int) -> str:
    """Embed an uploaded document through a gateway of this worker; an unexpected error
    leaves the document failed with it, so its page says why."""
    from workspace.knowledge import document_fail, document_ingest
    from workspace.models import Document
    from workspace.turns import with_gateway

    if not Document.objects.filter(pk=document_id).exists():
        return "missing"
    try:
        document = with_gateway(None, lambda gateway: document_ingest(gateway, document_id=document_id, key_id=key_id))
    except Exception as exc:  # noqa: BLE001 - recorded on the document and shown on its page
        document_fail(document_id, f"Indexing stopped by an error: {type(exc).__name__}: {exc}")
        return "failed"
    return document.status
