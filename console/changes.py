"""Reading the change feed (see `ChangeEvent`)."""

from __future__ import annotations

from console.models import ChangeEvent


def change_feed_head() -> int:
    last = ChangeEvent.objects.order_by("-id").values_list("id", flat=True).first()
    return last or 0


def change_feed_since(last_id: int, limit: int = 1000) -> list[tuple[int, str, str]]:
    return list(ChangeEvent.objects.filter(id__gt=last_id).order_by("id").values_list("id", "topic", "ref")[:limit])
