"""Routing configuration: immutable policy versions, per-deployment breaker
settings and the installation's shared-state namespace."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from console.models import Organization
from providers.models import Deployment


class PolicyState(models.TextChoices):
    PENDING = "pending", "Pending approval"
    LIVE = "live", "Live"
    SUPERSEDED = "superseded", "Superseded"
    REJECTED = "rejected", "Rejected"


class PolicyVersion(models.Model):
    """One version of an organization's whole routing policy (routes, rules, matrix).

    The document, its author, time and diff never change after creation; only the
    state moves (pending -> live -> superseded, or pending -> rejected) and records
    who decided. At most one version per organization is live.
    """

    DECISION_FIELDS = frozenset({"state", "decided_by", "decided_at", "decision_note"})

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="policy_versions")
    number = models.PositiveIntegerField()
    document = models.JSONField()
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    author_name = models.CharField(max_length=150)
    summary = models.CharField(max_length=300, blank=True)
    diff = models.TextField(blank=True)
    rollback_of = models.PositiveIntegerField(null=True, blank=True)
    state = models.CharField(max_length=16, choices=PolicyState.choices)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["organization", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "number"], name="policy_version_unique_number"),
            models.UniqueConstraint(
                fields=["organization"], condition=models.Q(state="live"), name="policy_version_one_live"
            ),
        ]
        indexes = [models.Index(fields=["state"])]

    def __str__(self) -> str:
        return f"{self.organization_id} v{self.number} ({self.state})"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            fields = kwargs.get("update_fields")
            if fields is None or not set(fields) <= self.DECISION_FIELDS:
                raise ValueError("a policy version is immutable; only its state may change")
        super().save(*args, **kwargs)


class DeploymentPolicy(models.Model):
    """Outlier-ejection settings of one deployment (defaults apply without a row).

    Once at least `failure_threshold` outcomes fall within the last `failure_window`
    seconds and the share of failures reaches the route's error rate, the deployment
    is ejected for `cooldown` seconds times the ejections in a row; then one request
    probes it. (The field names date from the circuit breaker this replaced.)
    """

    deployment = models.OneToOneField(Deployment, on_delete=models.CASCADE, related_name="routing_policy")
    failure_threshold = models.PositiveIntegerField(default=5)
    failure_window = models.FloatField(default=60.0, help_text="Seconds.")
    cooldown = models.FloatField(default=30.0, help_text="Seconds.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["deployment__name"]

    def __str__(self) -> str:
        return f"breaker for deployment {self.deployment_id}"


def namespace_new() -> str:
    return uuid.uuid4().hex[:12]


class RoutingInstall(models.Model):
    """One row: the namespace of this installation's shared routing state in Redis.

    A fresh database gets a fresh namespace, so state left in Redis by another
    database (deployment ids are reused) never leaks into this one.
    """

    namespace = models.CharField(max_length=32, default=namespace_new)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.namespace


class DeploymentProbe(models.Model):
    """The last scheduled health probe of one deployment (written once per probe round)."""

    deployment_id = models.BigIntegerField(unique=True)
    ok = models.BooleanField(null=True, help_text="None: inconclusive (rate limited, or refused the probe itself).")
    status = models.PositiveSmallIntegerField(default=0)
    latency_ms = models.FloatField(default=0)
    error = models.CharField(max_length=300, blank=True)
    failures = models.PositiveIntegerField(default=0, help_text="Failed probes in a row.")
    checked_at = models.DateTimeField()

    class Meta:
        ordering = ["deployment_id"]

    def __str__(self) -> str:
        return f"probe of deployment {self.deployment_id}"
