"""Hourly and daily usage rollups with latency and TTFT histograms (models of the budgets app)."""

from __future__ import annotations

from django.db import models

from budgets.model_fields import MONEY

# Latency and TTFT histograms: fixed log-spaced bucket upper bounds in milliseconds,
# five per decade from 1 ms to 100 s, plus one overflow bucket. Every rollup row has
# one count column per bucket, so percentiles are sums of columns, never raw scans.
HISTOGRAM_BOUNDS_MS: tuple[float, ...] = tuple(round(10 ** (k / 5), 3) for k in range(26))
HISTOGRAM_BUCKETS = len(HISTOGRAM_BOUNDS_MS) + 1
LATENCY_COLUMNS = tuple(f"lat_{i:02d}" for i in range(HISTOGRAM_BUCKETS))
TTFT_COLUMNS = tuple(f"ttft_{i:02d}" for i in range(HISTOGRAM_BUCKETS))


class UsageHourly(models.Model):
    """Sums of usage records per hour and every dimension the dashboards group by.

    Recomputed from the raw rows (see `budgets.rollups`), so each column is exactly
    the sum of the records it stands for. `tagset` holds a record's tags sorted and
    comma-delimited with a leading and trailing comma (",a,b,"), so "has tag t" is
    `tagset LIKE '%,t,%'` and a record is counted once whatever its tags.
    """

    hour = models.DateTimeField()
    organization_id = models.BigIntegerField()
    team_id = models.BigIntegerField(null=True, blank=True)
    user_id = models.BigIntegerField(null=True, blank=True)
    key_id = models.BigIntegerField(null=True, blank=True)
    application = models.CharField(max_length=200, blank=True)
    endpoint = models.CharField(max_length=32, blank=True)
    model_requested = models.CharField(max_length=200, blank=True)
    model_used = models.CharField(max_length=200, blank=True)
    provider_name = models.CharField(max_length=200, blank=True)
    deployment_id = models.BigIntegerField(null=True, blank=True)
    deployment_name = models.CharField(max_length=200, blank=True)
    tier = models.CharField(max_length=16, blank=True)
    tagset = models.CharField(max_length=500, blank=True)
    workflow = models.CharField(max_length=200, blank=True)
    status_class = models.CharField(max_length=3, blank=True)  # 2xx | 3xx | 4xx | 5xx
    data_class = models.CharField(max_length=32, blank=True)
    route = models.CharField(max_length=200, blank=True)
    cascade_layer = models.PositiveSmallIntegerField(null=True, blank=True)
    requests = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    fallbacks = models.PositiveIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cached_tokens = models.BigIntegerField(default=0)
    reasoning_tokens = models.BigIntegerField(default=0)
    input_cost = models.DecimalField(**MONEY)
    output_cost = models.DecimalField(**MONEY)
    cost = models.DecimalField(**MONEY)
    cached_savings = models.DecimalField(**MONEY, help_text="Cached input tokens x (input - cached price).")
    list_input_cost = models.DecimalField(**MONEY, help_text="Input cost at the catalog's list prices.")
    list_output_cost = models.DecimalField(**MONEY, help_text="Output cost at the catalog's list prices.")
    latency_ms_sum = models.FloatField(default=0)
    ttft_ms_sum = models.FloatField(default=0)
    ttft_count = models.PositiveIntegerField(default=0)
    gen_tokens = models.BigIntegerField(default=0, help_text="Output tokens of records with a generation time.")
    gen_ms_sum = models.FloatField(default=0, help_text="Their time from first token to last, summed.")

    class Meta:
        ordering = ["-hour"]
        indexes = [
            models.Index(fields=["organization_id", "hour"]),
            models.Index(fields=["hour"], name="usagehourly_hour"),
            models.Index(fields=["organization_id", "key_id", "hour"], name="usagehourly_org_key_hour"),
            models.Index(fields=["organization_id", "model_used", "hour"], name="usagehourly_org_model_hour"),
            models.Index(fields=["organization_id", "team_id", "hour"], name="usagehourly_org_team_hour"),
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}:00 org={self.organization_id} {self.model_used}"


class UsageDaily(models.Model):
    """The hourly rollups summed per day (in the organization's zone) along one dimension.

    One row per organization, day, dimension and value: `dimension` is a dashboard
    dimension name (`model`, `team`, ...), `all` for the day's total, or a pair such as
    `route+model` (values joined by a unit separator). Dashboards read these rows when
    their filters allow it, so a year of traffic is a few hundred rows per dimension
    instead of every hourly row. A tag dimension row counts each record under each of
    its tags. Rebuilt with the hours it covers, so it equals the hourly rollups.
    """

    day = models.DateField()
    organization_id = models.BigIntegerField()
    dimension = models.CharField(max_length=32)
    value = models.CharField(max_length=500, blank=True)
    requests = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    fallbacks = models.PositiveIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cached_tokens = models.BigIntegerField(default=0)
    reasoning_tokens = models.BigIntegerField(default=0)
    input_cost = models.DecimalField(**MONEY)
    output_cost = models.DecimalField(**MONEY)
    cost = models.DecimalField(**MONEY)
    cached_savings = models.DecimalField(**MONEY)
    list_input_cost = models.DecimalField(**MONEY)
    list_output_cost = models.DecimalField(**MONEY)
    latency_ms_sum = models.FloatField(default=0)
    ttft_ms_sum = models.FloatField(default=0)
    ttft_count = models.PositiveIntegerField(default=0)
    gen_tokens = models.BigIntegerField(default=0)
    gen_ms_sum = models.FloatField(default=0)

    class Meta:
        ordering = ["-day"]
        indexes = [models.Index(fields=["organization_id", "dimension", "day"])]

    def __str__(self) -> str:
        return f"{self.day} org={self.organization_id} {self.dimension}={self.value}"


for _model in (UsageHourly, UsageDaily):
    for _column in (*LATENCY_COLUMNS, *TTFT_COLUMNS):
        _model.add_to_class(_column, models.PositiveIntegerField(default=0))
del _column, _model


class RollupState(models.Model):
    """Where the rollup job got to: records with a larger id are not rolled up yet."""

    name = models.CharField(max_length=32, unique=True)
    last_record_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} at {self.last_record_id}"
