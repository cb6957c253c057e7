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


@shared_task(name="budgets.tasks.spend_anomalies")
def spend_anomalies() -> int:
    """The last complete hour of each organization against its trailing week."""
    from budgets.finops.anomalies import anomalies_detect

    return len(anomalies_detect())


@shared_task(name="budgets.tasks.finops_digest")
def finops_digest() -> int:
    """The weekly spend digest, e-mailed to each organization's alert recipients."""
    from budgets.finops.reports import digests_send

    return digests_send()
