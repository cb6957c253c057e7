"""Outcomes, FinOps settings and spend anomalies (models of the budgets app)."""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.utils import timezone

from budgets.model_fields import MONEY

# --------------------------------------------------------------------------- outcomes and cost models


class Outcome(models.Model):
    """Something a request or a workflow achieved, posted later by the app (`POST /api/v1/outcomes`).

    Tied to one request (`request_id`) or to a workflow as a whole; `value` is what the
    outcome is worth in USD when the app knows it.
    """

    organization_id = models.BigIntegerField(db_index=True)
    request_id = models.CharField(max_length=64, blank=True, db_index=True)
    workflow = models.CharField(max_length=200, blank=True)
    name = models.CharField(max_length=200)
    value = models.DecimalField(max_digits=20, decimal_places=10, null=True, blank=True)
    key_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["organization_id", "workflow", "created_at"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.workflow or self.request_id})"


class FinOpsSettings(models.Model):
    """Per organization: the routing-savings baseline and the self-hosting cost model."""

    organization = models.OneToOneField("console.Organization", on_delete=models.CASCADE, related_name="finops")
    baseline_model = models.CharField(
        max_length=200, blank=True, help_text="Model the savings are measured against (empty: the priciest)."
    )
    gpus = models.PositiveIntegerField(default=8)
    gpu_hourly_price = models.DecimalField(max_digits=12, decimal_places=4, default=Decimal("2.5000"))
    utilization = models.DecimalField(
        max_digits=5, decimal_places=2, default=Decimal("60.00"), help_text="Percent of GPU time doing useful work."
    )
    tokens_per_gpu_second = models.PositiveIntegerField(default=2500)
    operations_monthly = models.DecimalField(
        max_digits=14, decimal_places=2, default=Decimal("15000.00"), help_text="People and platform, USD per month."
    )
    setup_cost = models.DecimalField(
        max_digits=14, decimal_places=2, default=Decimal("50000.00"), help_text="One-off: integration, evaluation."
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"FinOps settings of {self.organization_id}"


class SpendAnomaly(models.Model):
    """An hour whose spend ran well above its trailing baseline."""

    organization_id = models.BigIntegerField(db_index=True)
    hour = models.DateTimeField()
    dimension = models.CharField(max_length=32, default="organization")
    value = models.CharField(max_length=200, blank=True)
    spend = models.DecimalField(**MONEY)
    baseline = models.DecimalField(**MONEY)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-hour", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["organization_id", "hour", "dimension", "value"], name="anomaly_once")
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}:00 {self.dimension}={self.value}"
