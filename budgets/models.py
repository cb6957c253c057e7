"""Usage records and their hourly rollups."""

from __future__ import annotations

from decimal import Decimal

from django.db import models

MONEY = {"max_digits": 20, "decimal_places": 10, "default": Decimal("0")}
UNIT_PRICE = {"max_digits": 14, "decimal_places": 6, "default": Decimal("0")}


class UsageRecord(models.Model):
    """One authenticated request, successful or not, with prices snapshotted.

    Identity fields are plain ids rather than foreign keys: records are written in
    batches off the hot path and must survive the deletion of what they name.
    """

    request_id = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(db_index=True)
    organization_id = models.BigIntegerField(db_index=True)
    team_id = models.BigIntegerField(null=True, blank=True)
    user_id = models.BigIntegerField(null=True, blank=True)
    key_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    endpoint = models.CharField(max_length=32)  # chat | embeddings | models
    stream = models.BooleanField(default=False)
    model_requested = models.CharField(max_length=200, blank=True)
    model_used = models.CharField(max_length=200, blank=True)
    deployment_id = models.BigIntegerField(null=True, blank=True)
    deployment_name = models.CharField(max_length=200, blank=True)
    provider_name = models.CharField(max_length=200, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cached_tokens = models.PositiveIntegerField(default=0)
    tokens_estimated = models.BooleanField(default=False)
    input_price = models.DecimalField(**UNIT_PRICE, help_text="USD per 1M input tokens at request time.")
    output_price = models.DecimalField(**UNIT_PRICE, help_text="USD per 1M output tokens at request time.")
    cached_input_price = models.DecimalField(**UNIT_PRICE)
    input_cost = models.DecimalField(**MONEY)
    output_cost = models.DecimalField(**MONEY)
    cost = models.DecimalField(**MONEY)
    ttft_ms = models.FloatField(null=True, blank=True)
    latency_ms = models.FloatField(default=0)
    tokens_per_second = models.FloatField(null=True, blank=True)
    status_code = models.PositiveSmallIntegerField()
    error_type = models.CharField(max_length=64, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.CharField(max_length=500, blank=True)
    tags = models.JSONField(default=list, blank=True)
    workflow = models.CharField(max_length=200, blank=True)
    end_user = models.CharField(max_length=200, blank=True)
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["organization_id", "-created_at"]),
            models.Index(fields=["organization_id", "model_used", "-created_at"]),
        ]

    def __str__(self) -> str:
        return self.request_id

    @property
    def ok(self) -> bool:
        return self.status_code < 400


class UsageHourly(models.Model):
    """Sums of usage records per hour and dimension, recomputed from the raw rows."""

    hour = models.DateTimeField()
    organization_id = models.BigIntegerField()
    team_id = models.BigIntegerField(null=True, blank=True)
    key_id = models.BigIntegerField(null=True, blank=True)
    model_used = models.CharField(max_length=200, blank=True)
    requests = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cached_tokens = models.BigIntegerField(default=0)
    cost = models.DecimalField(**MONEY)
    latency_ms_sum = models.FloatField(default=0)
    ttft_ms_sum = models.FloatField(default=0)
    ttft_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-hour"]
        indexes = [models.Index(fields=["organization_id", "hour"])]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}:00 org={self.organization_id} {self.model_used}"


class RollupState(models.Model):
    """Where the rollup job got to: records with a larger id are not rolled up yet."""

    name = models.CharField(max_length=32, unique=True)
    last_record_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)
