"""Reads for the guard's console pages (always scoped to one organization)."""

from __future__ import annotations

from django.db.models import QuerySet

from console.models import ApiKey, Organization, Team
from guardrails.models import GuardPolicy, GuardRecognizer, GuardReview


def policies_for(*, organization: Organization) -> list[GuardPolicy]:
    return list(
        GuardPolicy.objects.filter(organization=organization)
        .select_related("team", "key")
        .order_by("team_id", "key_id")
    )


def policy_for(*, organization: Organization, team: Team | None, key: ApiKey | None) -> GuardPolicy | None:
    return GuardPolicy.objects.filter(organization=organization, team=team, key=key).first()


def recognizers_for(*, organization: Organization) -> QuerySet[GuardRecognizer]:
    return GuardRecognizer.objects.filter(organization=organization).order_by("entity")


def reviews_for(*, organization: Organization, status: str = "") -> QuerySet[GuardReview]:
    reviews = GuardReview.objects.filter(organization=organization).select_related("reviewer")
    if status:
        reviews = reviews.filter(status=status)
    return reviews.order_by("-created_at", "-id")
