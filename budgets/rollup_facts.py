"""What one usage record adds to its hourly rollup row: its dimensions, sums and histogram buckets."""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from budgets.models import (
    HISTOGRAM_BOUNDS_MS,
    LATENCY_COLUMNS,
    TTFT_COLUMNS,
    UsageHourly,
)

# The dimensions of a rollup row, in the order of its identity tuple.
DIMENSIONS = (
    "organization_id",
    "team_id",
    "user_id",
    "key_id",
    "application",
    "endpoint",
    "model_requested",
    "model_used",
    "provider_name",
    "deployment_id",
    "deployment_name",
    "tier",
    "tagset",
    "workflow",
    "status_class",
    "data_class",
    "route",
    "cascade_layer",
)
INT_SUMS = (
    "requests",
    "errors",
    "fallbacks",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "ttft_count",
    "gen_tokens",
    *LATENCY_COLUMNS,
    *TTFT_COLUMNS,
)
MONEY_SUMS = ("input_cost", "output_cost", "cost", "cached_savings", "list_input_cost", "list_output_cost")
FLOAT_SUMS = ("latency_ms_sum", "ttft_ms_sum", "gen_ms_sum")

_RECORD_FIELDS = (
    "created_at",
    "organization_id",
    "team_id",
    "user_id",
    "key_id",
    "endpoint",
    "model_requested",
    "model_used",
    "provider_name",
    "deployment_id",
    "deployment_name",
    "tags",
    "workflow",
    "status_code",
    "metadata",
    "attempts",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "input_cost",
    "output_cost",
    "cost",
    "latency_ms",
    "ttft_ms",
    "input_price",
    "cached_input_price",
    "list_input_cost",
    "list_output_cost",
)


def _hour(value: datetime) -> datetime:
    return value.replace(minute=0, second=0, microsecond=0)


def histogram_bucket(value_ms: float) -> int:
    """Index of the bucket a duration falls in (the last bucket holds everything above 100 s)."""
    return bisect_left(HISTOGRAM_BOUNDS_MS, value_ms)


def tagset_of(tags: Any) -> str:
    """ ",a,b," for tags ["b", "a"]; "" for none. Commas inside a tag become spaces."""
    if not isinstance(tags, list) or not tags:
        return ""
    clean = sorted({str(tag).replace(",", " ") for tag in tags if str(tag)})
    return f",{','.join(clean)}," if clean else ""


def status_class_of(status_code: int) -> str:
    return f"{min(max(int(status_code) // 100, 1), 5)}xx"


def _int(value: Any) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0


def _layer(value: Any) -> int | None:
    try:
        layer = int(value)
    except (TypeError, ValueError):
        return None
    return layer if 0 <= layer < 100 else None


@dataclass
class _Lookups:
    """What records name by id or model only, resolved once per run."""

    applications: dict[int, str]
    tiers: dict[str, str]

    @classmethod
    def load(cls) -> _Lookups:
        from console.models import ApiKey
        from providers.selectors import model_list

        applications = dict(ApiKey.objects.exclude(app_name="").values_list("id", "app_name"))
        tiers = dict(model_list().values_list("name", "tier"))
        return cls(applications=applications, tiers=tiers)


@dataclass
class RecordFacts:
    """One raw record reduced to its rollup identity and the amounts it adds."""

    hour: datetime
    ident: tuple
    ints: dict[str, int]
    money: tuple[Decimal, ...]  # in MONEY_SUMS order
    floats: tuple[float, float, float]


def record_facts(row: tuple, lookups: _Lookups) -> RecordFacts:
    """The identity and contributions of one record (a `_RECORD_FIELDS` tuple)."""
    (
        created_at,
        org,
        team,
        user,
        key,
        endpoint,
        model_requested,
        model_used,
        provider,
        deployment_id,
        deployment_name,
        tags,
        workflow,
        status,
        metadata,
        attempts,
        tin,
        tout,
        tcached,
        input_cost,
        output_cost,
        cost,
        latency,
        ttft,
        input_price,
        cached_price,
        list_input_cost,
        list_output_cost,
    ) = row
    meta = metadata if isinstance(metadata, dict) else {}
    routed = meta.get("routing")
    if isinstance(routed, dict):  # what the pipeline records under `routing`
        cascade = routed.get("cascade") if isinstance(routed.get("cascade"), dict) else {}
        meta = {
            "route": routed.get("route"),
            "data_class": routed.get("data_class"),
            "cascade_layer": cascade.get("answered_by"),
            "fallback": bool(routed.get("fallbacks")),
            **meta,
        }
    application = str(meta.get("application") or (lookups.applications.get(key, "") if key else ""))[:200]
    tier = str(meta.get("tier") or lookups.tiers.get(model_used or model_requested, ""))[:16]
    ident = (
        org,
        team,
        user,
        key,
        application,
        endpoint,
        model_requested,
        model_used,
        provider,
        deployment_id,
        deployment_name,
        tier,
        tagset_of(tags)[:500],
        workflow,
        status_class_of(status),
        str(meta.get("data_class") or "")[:32],
        str(meta.get("route") or "")[:200],
        _layer(meta.get("cascade_layer")),
    )
    ints = {
        "requests": 1,
        "errors": int(status >= 400),
        "fallbacks": int(attempts > 1 or bool(meta.get("fallback"))),
        "input_tokens": tin,
        "output_tokens": tout,
        "cached_tokens": tcached,
        "reasoning_tokens": _int(meta.get("reasoning_tokens")),
        "ttft_count": 0,
        "gen_tokens": 0,
        LATENCY_COLUMNS[histogram_bucket(latency or 0.0)]: 1,
    }
    gen_ms = 0.0
    if ttft is not None:
        ints["ttft_count"] = 1
        ints[TTFT_COLUMNS[histogram_bucket(ttft)]] = 1
        if status < 400 and tout and latency > ttft:
            ints["gen_tokens"] = tout
            gen_ms = latency - ttft
    return RecordFacts(
        hour=_hour(created_at),
        ident=ident,
        ints=ints,
        money=(
            input_cost,
            output_cost,
            cost,
            _savings(tcached, input_price, cached_price),
            # Records from before list prices were recorded cost what the catalog said.
            input_cost if list_input_cost is None else list_input_cost,
            output_cost if list_output_cost is None else list_output_cost,
        ),
        floats=(latency or 0.0, ttft or 0.0, gen_ms),
    )


_MILLION = Decimal(1_000_000)
_QUANTUM = Decimal(1).scaleb(-10)


def _savings(cached_tokens: int, input_price: Decimal, cached_price: Decimal) -> Decimal:
    """What caching saved on one record, at the prices snapshotted on it (1e-10 USD precision)."""
    if not cached_tokens or input_price <= cached_price:
        return Decimal(0)
    return (cached_tokens * (input_price - cached_price) / _MILLION).quantize(_QUANTUM)


def _new_row(hour: datetime, ident: tuple) -> UsageHourly:
    row = UsageHourly(hour=hour, **dict(zip(DIMENSIONS, ident, strict=True)))
    for name in MONEY_SUMS:
        setattr(row, name, Decimal(0))
    return row


def _add(row: UsageHourly, facts: RecordFacts) -> None:
    for name, value in facts.ints.items():
        setattr(row, name, getattr(row, name) + value)
    row.input_cost += facts.money[0]
    row.output_cost += facts.money[1]
    row.cost += facts.money[2]
    row.cached_savings += facts.money[3]
    row.list_input_cost += facts.money[4]
    row.list_output_cost += facts.money[5]
    row.latency_ms_sum += facts.floats[0]
    row.ttft_ms_sum += facts.floats[1]
    row.gen_ms_sum += facts.floats[2]
