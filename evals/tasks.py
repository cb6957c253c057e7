"""Celery wrappers: they take ids and call the services."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="evals.tasks.eval_run")
def eval_run(run_id: int) -> str:
    from .runner import run_execute

    run = run_execute(run_id=run_id)
    return run.status if run is not None else "missing"


@shared_task(name="evals.tasks.eval_schedule")
def eval_schedule() -> int:
    """Queue the runs that scheduled and pinned suites are due for."""
    from .scheduling import scheduled_runs_queue

    return len(scheduled_runs_queue())


@shared_task(name="evals.tasks.version_drift_check")
def version_drift_check() -> int:
    """Compare the upstream versions the usage records report with the last known ones."""
    from .governance import version_drift_check as check

    return len(check())


@shared_task(name="evals.tasks.model_lifecycle")
def model_lifecycle() -> int:
    """Apply lifecycle dates that have come; alert before deprecations and retirements."""
    from .governance import model_lifecycle as run

    return len(run())
