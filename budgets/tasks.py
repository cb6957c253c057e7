"""Background jobs of the budgets app: thin wrappers over services."""

from celery import shared_task

from budgets.rollups import usage_rollup as usage_rollup_service


@shared_task(name="budgets.tasks.usage_rollup")
def usage_rollup() -> dict:
    return usage_rollup_service()


@shared_task(name="budgets.tasks.budget_maintenance")
def budget_maintenance() -> dict:
    """Expired holds released, pending ledger written, failed alert deliveries retried."""
    from budgets.facade import budgets_maintain

    return budgets_maintain()
