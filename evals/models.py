"""Suites of cases with checks, runs of a suite against models, and their results."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils import timezone

from console.models import Organization


class TaskClass(models.TextChoices):
    CLASSIFICATION = "classification", "Classification"
    EXTRACTION = "extraction", "Extraction"
    ARITHMETIC = "arithmetic", "Arithmetic"
    GENERATION = "generation", "Generation"
    OTHER = "other", "Other"


class CheckKind(models.TextChoices):
    EXACT = "exact", "Exact match"
    CONTAINS = "contains", "Contains"
    REGEX = "regex", "Regular expression"
    JSON_SCHEMA = "json_schema", "JSON Schema"
    NUMERIC = "numeric", "Number within tolerance"
    RUBRIC = "rubric", "Rubric (judge model)"


class Schedule(models.TextChoices):
    NONE = "", "On demand only"
    HOURLY = "hourly", "Hourly"
    DAILY = "daily", "Daily"


class Suite(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="eval_suites")
    name = models.CharField(max_length=120)
    task_class = models.CharField(max_length=32, choices=TaskClass.choices, default=TaskClass.OTHER)
    version = models.PositiveIntegerField(default=1)
    description = models.TextField(blank=True)
    judge_model = models.CharField(max_length=200, blank=True, help_text="Grades rubric checks.")
    # Scheduled runs and the regression check re-run these models.
    model_names = models.JSONField(default=list, blank=True)
    schedule = models.CharField(max_length=16, choices=Schedule.choices, default=Schedule.NONE, blank=True)
    pinned = models.BooleanField(default=False, help_text="Re-run on schedule and alert on a score drop.")
    regression_margin = models.DecimalField(max_digits=5, decimal_places=4, default=Decimal("0.05"))
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="evals_suite_unique_name")]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class Case(models.Model):
    suite = models.ForeignKey(Suite, on_delete=models.CASCADE, related_name="cases")
    position = models.PositiveIntegerField(default=0)
    name = models.CharField(max_length=200, blank=True)
    messages = models.JSONField()
    response_format = models.JSONField(null=True, blank=True)
    tools = models.JSONField(null=True, blank=True)
    max_tokens = models.PositiveIntegerField(default=256)
    check_kind = models.CharField(max_length=16, choices=CheckKind.choices)
    spec = models.JSONField(default=dict, help_text="expected / pattern / schema / tolerance / rubric, by kind.")

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.name or f"case {self.position}"


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Failed"


class Run(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="eval_runs")
    suite = models.ForeignKey(Suite, on_delete=models.CASCADE, related_name="runs")
    suite_version = models.PositiveIntegerField()
    model_names = models.JSONField()
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED)
    trigger = models.CharField(max_length=16, default="manual")  # manual | schedule | regression
    concurrency = models.PositiveIntegerField(default=4)
    total = models.PositiveIntegerField(default=0)
    completed = models.PositiveIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["organization", "-created_at"])]

    def __str__(self) -> str:
        return f"run {self.pk} of {self.suite_id}"

    @property
    def finished(self) -> bool:
        return self.status in (RunStatus.DONE, RunStatus.CANCELLED, RunStatus.FAILED)


class Result(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="results")
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="results")
    model = models.CharField(max_length=200)
    answer = models.TextField(blank=True)
    passed = models.BooleanField(default=False)
    score = models.DecimalField(max_digits=5, decimal_places=4, default=Decimal("0"))
    detail = models.TextField(blank=True)
    status = models.PositiveIntegerField(default=0)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=18, decimal_places=10, default=Decimal("0"))
    judge_cost = models.DecimalField(max_digits=18, decimal_places=10, default=Decimal("0"))
    ttft_ms = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    deployment = models.CharField(max_length=200, blank=True)
    request_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["case__position", "case_id", "model"]
        constraints = [models.UniqueConstraint(fields=["run", "case", "model"], name="evals_result_unique")]

    def __str__(self) -> str:
        return f"{self.model} on case {self.case_id}"


class Score(models.Model):
    """One model's aggregate on one finished run: what leaderboards, trends and routing read."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="scores")
    suite = models.ForeignKey(Suite, on_delete=models.CASCADE, related_name="scores")
    model = models.CharField(max_length=200)
    score = models.DecimalField(max_digits=5, decimal_places=4)
    passed = models.PositiveIntegerField()
    cases = models.PositiveIntegerField()
    cost = models.DecimalField(max_digits=18, decimal_places=10)
    cost_per_case = models.DecimalField(max_digits=18, decimal_places=10)
    p50_latency_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["suite", "model", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.model}: {self.score}"


class Regression(models.Model):
    """A pinned suite's score fell beyond its margin for a model (and its deployment)."""

    suite = models.ForeignKey(Suite, on_delete=models.CASCADE, related_name="regressions")
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="regressions")
    model = models.CharField(max_length=200)
    deployment = models.CharField(max_length=200, blank=True)
    previous = models.DecimalField(max_digits=5, decimal_places=4)
    current = models.DecimalField(max_digits=5, decimal_places=4)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.model} fell on {self.suite_id}"


class DeploymentVersion(models.Model):
    """The upstream version a deployment last reported (read from usage records by the
    drift check, never on the request path). Ids, not foreign keys: records outlive rows."""

    deployment_id = models.BigIntegerField(unique=True)
    deployment_name = models.CharField(max_length=200)
    model = models.CharField(max_length=200)
    version = models.CharField(max_length=200)
    fingerprint = models.CharField(max_length=100, blank=True)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    last_record_id = models.BigIntegerField(default=0, db_index=True)

    class Meta:
        ordering = ["deployment_name"]

    def __str__(self) -> str:
        return f"{self.deployment_name}: {self.version}"


class VersionDrift(models.Model):
    """A deployment answered with another upstream version than before (or than it pins)."""

    deployment_id = models.BigIntegerField(db_index=True)
    deployment_name = models.CharField(max_length=200)
    model = models.CharField(max_length=200)
    previous_version = models.CharField(max_length=200, blank=True)
    version = models.CharField(max_length=200)
    previous_fingerprint = models.CharField(max_length=100, blank=True)
    fingerprint = models.CharField(max_length=100, blank=True)
    pinned_version = models.CharField(max_length=200, blank=True)
    organization_ids = models.JSONField(default=list)
    seen_at = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.deployment_name}: {self.previous_version} -> {self.version}"


class LifecycleNotice(models.Model):
    """One lifecycle alert sent (so each is sent once per organization, model, kind and date)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="lifecycle_notices")
    model = models.CharField(max_length=200)
    kind = models.CharField(max_length=16)  # deprecation | retirement
    on_date = models.DateField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "model", "kind", "on_date"], name="lifecycle_notice_once")
        ]

    def __str__(self) -> str:
        return f"{self.model} {self.kind} {self.on_date}"
