"""Thin Celery wrappers over workspace services."""

from __future__ import annotations

from celery import shared_task

from workspace.services import conversations_expire


@shared_task(name="workspace.conversations_expire")
def conversations_expire_task() -> int:
    """Delete conversations past their organization's retention (run daily by beat)."""
    return conversations_expire()
