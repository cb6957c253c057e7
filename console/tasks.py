"""Background jobs of the console app: thin wrappers over services."""

from datetime import timedelta

from celery import shared_task
from django.conf import settings

from console.changes import changes_prune


@shared_task(name="console.tasks.change_feed_prune")
def change_feed_prune() -> int:
    """Delete change-feed rows older than the retention (far longer than any poll gap)."""
    conf = settings.GATEHOUSE
    retention = timedelta(seconds=conf["CHANGE_FEED_RETENTION"])
    return changes_prune(older_than=retention, batch=conf["CHANGE_FEED_PRUNE_BATCH"])
