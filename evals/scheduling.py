"""Which suites are due for a scheduled run (pinned suites are re-run daily at least)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from .models import Run, Schedule, Suite
from .services import run_create

INTERVALS = {Schedule.HOURLY: timedelta(hours=1), Schedule.DAILY: timedelta(days=1)}


def suites_due(*, now: datetime | None = None) -> list[Suite]:
    now = now or timezone.now()
    due = []
    for suite in Suite.objects.filter(~Q(schedule="") | Q(pinned=True)).exclude(model_names=[]):
        interval = INTERVALS.get(suite.schedule, INTERVALS[Schedule.DAILY])
        last = (
            Run.objects.filter(suite=suite, trigger__in=("schedule", "regression"))
            .order_by("-created_at")
            .values_list("created_at", flat=True)
            .first()
        )
        if last is None or now - last >= interval:
            due.append(suite)
    return due


def scheduled_runs_queue(*, now: datetime | None = None) -> list[Run]:
    return [
        run_create(suite=suite, models=suite.model_names, trigger="regression" if suite.pinned else "schedule")
        for suite in suites_due(now=now)
        if suite.cases.exists()
    ]
