"""Usage records and their hourly rollups; budgets, their counters and holds; rate limits; alerts."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from django.db import models
from django.db.models import Q
from django.utils import timezone

from budgets.model_fields import MONEY, UNIT_PRICE


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
    cache_write_5m_tokens = models.PositiveIntegerField(
        default=0, help_text="Prompt tokens written to a 5-minute prompt cache (billed at 1.25x input)."
    )
    cache_write_1h_tokens = models.PositiveIntegerField(
        default=0, help_text="Prompt tokens written to a 1-hour prompt cache (billed at 2x input)."
    )
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
    sanitized = models.BooleanField(
        default=False, help_text="Some value was cut, cleaned or clamped to be storable (see the usage docs)."
    )
    # The model version the provider said answered (OpenAI/Anthropic `model`, Gemini `modelVersion`)
    # and OpenAI's `system_fingerprint`: evidence of what ran, and the input of drift detection.
    upstream_version = models.CharField(max_length=200, blank=True)
    system_fingerprint = models.CharField(max_length=100, blank=True)
    # The catalog's list prices and what the request would cost at them, next to the
    # contracted cost the organization was charged (`cost`); empty on records from before.
    list_input_price = models.DecimalField(**{**UNIT_PRICE, "null": True, "blank": True, "default": None})
    list_output_price = models.DecimalField(**{**UNIT_PRICE, "null": True, "blank": True, "default": None})
    list_cached_input_price = models.DecimalField(**{**UNIT_PRICE, "null": True, "blank": True, "default": None})
    list_input_cost = models.DecimalField(**{**MONEY, "null": True, "blank": True, "default": None})
    list_output_cost = models.DecimalField(**{**MONEY, "null": True, "blank": True, "default": None})
    list_cost = models.DecimalField(**{**MONEY, "null": True, "blank": True, "default": None})
    contracted_cost = models.DecimalField(**{**MONEY, "null": True, "blank": True, "default": None})
    # The compliance facts of the answering deployment at that moment (region, certifications, retention).
    deployment_facts = models.JSONField(default=dict, blank=True)

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


class UsageDeadLetter(models.Model):
    """A usage record the database refused, set aside so it never holds back the others.

    `record` is the record as JSON text (as the usage journal writes it). An operator
    fixes the cause and retries it, or discards it.
    """

    request_id = models.CharField(max_length=64, db_index=True)
    organization_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    record = models.TextField()
    error = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveSmallIntegerField(default=1)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"dead letter {self.request_id}"


# --------------------------------------------------------------------------- budgets and rate limits

# Counters count money in integer units of 1e-10 USD: the precision of `UsageRecord.cost`,
# so a counter and the sum of the records it stands for are the same integer.
UNITS_PER_USD = 10**10


class Scope(models.TextChoices):
    ORGANIZATION = "organization", "Organization"
    TEAM = "team", "Team"
    USER = "user", "User"
    KEY = "key", "Key"


class LimitScope(models.TextChoices):
    ORGANIZATION = "organization", "Organization"
    TEAM = "team", "Team"
    USER = "user", "User"
    KEY = "key", "Key"
    DEPLOYMENT = "deployment", "Deployment"


class Period(models.TextChoices):
    DAILY = "daily", "Daily"
    WEEKLY = "weekly", "Weekly"
    MONTHLY = "monthly", "Monthly"
    LIFETIME = "lifetime", "Lifetime"


def default_thresholds() -> list[int]:
    return [50, 80, 100]


class Budget(models.Model):
    """A spending limit on one scope for one calendar period in the organization's zone.

    Hard budgets refuse requests that could overrun them; soft budgets only alert.
    Budgets are archived, never deleted, so their period history stays readable.
    """

    organization = models.ForeignKey("console.Organization", on_delete=models.CASCADE, related_name="budgets")
    name = models.CharField(max_length=200)
    scope = models.CharField(max_length=16, choices=Scope.choices)
    scope_id = models.BigIntegerField(help_text="Id of the organization, team, user or key the budget limits.")
    amount = models.DecimalField(max_digits=20, decimal_places=10, help_text="USD per period.")
    period = models.CharField(max_length=16, choices=Period.choices, default=Period.MONTHLY)
    hard = models.BooleanField(default=True, help_text="Refuse requests that could overrun (soft: allow and alert).")
    thresholds = models.JSONField(default=default_thresholds, help_text="Alert at these percentages of the amount.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["organization", "scope", "scope_id", "period"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name"], condition=Q(archived_at__isnull=True), name="budget_unique_name"
            ),
            models.UniqueConstraint(
                fields=["organization", "scope", "scope_id", "period"],
                condition=Q(archived_at__isnull=True),
                name="budget_unique_scope_period",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def amount_units(self) -> int:
        return usd_to_units(self.amount)


class BudgetCounter(models.Model):
    """Spend and open holds of one budget in one period.

    The period start is part of the identity: a new period is a new row, so a reset
    needs no job, and past periods stay as they were. With Redis the live counter is
    in Redis and this row mirrors it.
    """

    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="counters")
    period_start = models.DateTimeField()
    period_end = models.DateTimeField(null=True, blank=True)  # None: lifetime
    limit_units = models.BigIntegerField(default=0)
    spent_units = models.BigIntegerField(default=0)
    held_units = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["budget", "-period_start"]
        constraints = [models.UniqueConstraint(fields=["budget", "period_start"], name="budget_counter_unique")]

    def __str__(self) -> str:
        return f"{self.budget_id}@{self.period_start:%Y-%m-%d}"

    @property
    def ident(self) -> str:
        return counter_ident(self.budget_id, self.period_start)

    @property
    def spent(self) -> Decimal:
        return units_to_usd(self.spent_units)

    @property
    def held(self) -> Decimal:
        return units_to_usd(self.held_units)


class HoldStatus(models.TextChoices):
    HELD = "held", "Held"
    SETTLED = "settled", "Settled"
    RELEASED = "released", "Released"
    EXPIRED = "expired", "Expired"


class BudgetHold(models.Model):
    """The ledger of reservations: one row per admitted request that had budgets, or per
    lease — a slice of a budget one gateway process reserves and admits requests within
    while the budget is far from its limit (its `members` name those requests).

    `counters` names the counters the hold was placed on (`<budget id>:<period start>`).
    A hold ends settled (actual cost booked), released (failed, nothing spent) or
    expired (never settled: its process died); a request that ends after its hold
    expired still books its cost and is marked `late`.
    """

    request_id = models.CharField(max_length=64, unique=True)
    organization_id = models.BigIntegerField(db_index=True)
    counters = models.JSONField(default=list)
    amount_units = models.BigIntegerField()
    actual_units = models.BigIntegerField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=HoldStatus.choices, default=HoldStatus.HELD)
    late = models.BooleanField(default=False)
    created_at = models.DateTimeField(db_index=True)
    expires_at = models.DateTimeField()
    settled_at = models.DateTimeField(null=True, blank=True)
    # A lease (request id `lease:…`, docs/budgets-runtime.md): the requests a gateway
    # process admitted within it, written when the lease is settled.
    members = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "expires_at"])]

    def __str__(self) -> str:
        return f"{self.request_id} {self.status}"


class RateLimit(models.Model):
    """Requests and tokens per minute for a key, user, team, organization or deployment.

    Deployment limits keep traffic under a provider's own limits; a shared
    deployment's limit has no organization.
    """

    organization = models.ForeignKey(
        "console.Organization", null=True, blank=True, on_delete=models.CASCADE, related_name="rate_limits"
    )
    name = models.CharField(max_length=200)
    scope = models.CharField(max_length=16, choices=LimitScope.choices)
    scope_id = models.BigIntegerField()
    rpm = models.PositiveIntegerField(null=True, blank=True, help_text="Requests per minute.")
    tpm = models.PositiveIntegerField(null=True, blank=True, help_text="Tokens per minute.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["scope", "scope_id"]
        constraints = [
            models.UniqueConstraint(fields=["scope", "scope_id"], name="rate_limit_unique_target"),
            models.UniqueConstraint(fields=["organization", "name"], name="rate_limit_unique_name"),
        ]

    def __str__(self) -> str:
        return self.name


class AlertSettings(models.Model):
    """Where an organization's budget alerts go: a signed webhook and e-mail."""

    organization = models.OneToOneField("console.Organization", on_delete=models.CASCADE, related_name="+")
    webhook_url = models.URLField(blank=True, max_length=500)
    webhook_secret_encrypted = models.TextField(blank=True)
    emails = models.JSONField(default=list, blank=True, help_text="Empty: the owners, admins and finance members.")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"alerts of {self.organization_id}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    NONE = "none", "Not configured"


class BudgetAlert(models.Model):
    """A threshold crossed in one period: recorded once, delivered by webhook and e-mail."""

    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="alerts")
    organization_id = models.BigIntegerField(db_index=True)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField(null=True, blank=True)
    threshold = models.PositiveSmallIntegerField(help_text="Percent of the budget.")
    spent_units = models.BigIntegerField()
    limit_units = models.BigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)
    webhook_status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    email_status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    dismissed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["budget", "period_start", "threshold"], name="budget_alert_once")
        ]

    def __str__(self) -> str:
        return f"{self.budget_id} {self.threshold}% @{self.period_start:%Y-%m-%d}"

    @property
    def pending(self) -> bool:
        return DeliveryStatus.PENDING in (self.webhook_status, self.email_status)


def usd_to_units(amount: Decimal) -> int:
    """USD to counter units, rounding half away from zero like PostgreSQL and SQLite do."""
    return int((Decimal(amount) * UNITS_PER_USD).to_integral_value(rounding=ROUND_HALF_UP))


def units_to_usd(units: int) -> Decimal:
    return (Decimal(units) / UNITS_PER_USD).quantize(UNIT_QUANTUM)


def counter_ident(budget_id: int, period_start) -> str:
    return f"{budget_id}:{int(period_start.timestamp())}"


UNIT_QUANTUM = Decimal(1).scaleb(-10)


class StoreFailure(models.TextChoices):
    CLOSED = "closed", "Refuse the request (fail closed)"
    OPEN = "open", "Serve and record it without a hold (fail open)"


class BudgetPolicy(models.Model):
    """How an organization's requests are treated when the budget store (Redis or the database)
    cannot be reached: refused with a 503 (the default) or served without a hold."""

    organization = models.OneToOneField("console.Organization", on_delete=models.CASCADE, related_name="+")
    on_store_failure = models.CharField(max_length=8, choices=StoreFailure.choices, default=StoreFailure.CLOSED)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"budget policy of {self.organization_id}"


# Rollups and the FinOps models live in their own modules; Django finds them through here.
from budgets.models_finops import FinOpsSettings, Outcome, SpendAnomaly  # noqa: E402, F401
from budgets.models_rollups import (  # noqa: E402, F401
    HISTOGRAM_BOUNDS_MS,
    HISTOGRAM_BUCKETS,
    LATENCY_COLUMNS,
    TTFT_COLUMNS,
    RollupState,
    UsageDaily,
    UsageHourly,
)
