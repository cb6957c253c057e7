from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from console.models import ApiKey, Organization, Team


class GuardPolicy(models.Model):
    """One layer of guard policy: the organization's (no team, no key), a team's or a key's.

    `document` is a partial policy (see `guardrails/policy.py`); layers merge
    organization -> team -> key, later layers winning.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="guard_policies")
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.CASCADE, related_name="guard_policies")
    key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.CASCADE, related_name="guard_policies")
    document = models.JSONField(default=dict)
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["organization_id", "team_id", "key_id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "team", "key"], name="guard_policy_one_per_scope"),
            models.UniqueConstraint(
                fields=["organization"],
                condition=models.Q(team__isnull=True, key__isnull=True),
                name="guard_policy_one_per_organization",
            ),
        ]

    def __str__(self) -> str:
        return f"guard policy {self.scope_label}"

    @property
    def scope(self) -> str:
        return "key" if self.key_id else "team" if self.team_id else "organization"

    @property
    def scope_label(self) -> str:
        if self.key_id:
            return f"key {self.key.prefix}"
        if self.team_id:
            return f"team {self.team.name}"
        return "organization"


class Checksum(models.TextChoices):
    NONE = "", "None"
    LUHN = "luhn", "Luhn"
    MOD97 = "mod97", "ISO 7064 mod 97"


class GuardRecognizer(models.Model):
    """An organization's own entity type: a pattern, an optional checksum, context words."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="guard_recognizers")
    entity = models.CharField(max_length=40)
    pattern = models.CharField(max_length=500)
    checksum = models.CharField(max_length=8, choices=Checksum.choices, blank=True, default="")
    context = models.CharField(max_length=500, blank=True, help_text="Comma-separated words, one must precede a match")
    score = models.FloatField(default=0.8)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["entity"]
        constraints = [models.UniqueConstraint(fields=["organization", "entity"], name="guard_recognizer_unique")]

    def __str__(self) -> str:
        return self.entity

    @property
    def context_words(self) -> list[str]:
        return [w.strip().lower() for w in self.context.split(",") if w.strip()]


class ReviewStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    ACCEPTABLE = "acceptable", "Acceptable"
    VIOLATION = "violation", "Violation"


class GuardReview(models.Model):
    """A flagged request waiting for (or carrying) a reviewer's decision. Holds no content."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="guard_reviews")
    request_id = models.CharField(max_length=64)
    verdict = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=12, choices=ReviewStatus.choices, default=ReviewStatus.PENDING)
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    note = models.TextField(blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["organization", "status", "-created_at"], name="guard_review_queue")]
        constraints = [
            models.UniqueConstraint(fields=["organization", "request_id"], name="guard_review_one_per_request")
        ]

    def __str__(self) -> str:
        return f"review {self.request_id}"
