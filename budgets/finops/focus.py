"""FOCUS 1.2 export of billed usage (the FinOps Foundation's Cost and Usage dataset).

One row per day (the charge period, in UTC), team (sub account), provider, model and
direction (input or output tokens), read from the hourly rollups. Billed, effective, list
and contracted costs are the same amounts: the gateway passes provider list prices through.
InvoiceId names the organization's statement for the billing period (a provisional invoice).
The export is checked with the Foundation's `focus-validator` (see scripts/focus_validate.sh).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models.functions import TruncDate

from budgets.finops import queries as q
from budgets.finops.tables import csv_value, write_csv

FOCUS_VERSION = "1.2"
PRICE_QUANTUM = Decimal("0.0000000001")
MILLION = Decimal(1_000_000)

COLUMNS = [
    "AvailabilityZone",
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingAccountType",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "CapacityReservationId",
    "CapacityReservationStatus",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "CommitmentDiscountCategory",
    "CommitmentDiscountId",
    "CommitmentDiscountName",
    "CommitmentDiscountQuantity",
    "CommitmentDiscountStatus",
    "CommitmentDiscountType",
    "CommitmentDiscountUnit",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ContractedCost",
    "ContractedUnitPrice",
    "EffectiveCost",
    "InvoiceId",
    "InvoiceIssuerName",
    "ListCost",
    "ListUnitPrice",
    "PricingCategory",
    "PricingCurrency",
    "PricingCurrencyContractedUnitPrice",
    "PricingCurrencyEffectiveCost",
    "PricingCurrencyListUnitPrice",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "RegionId",
    "RegionName",
    "ResourceId",
    "ResourceName",
    "ResourceType",
    "ServiceCategory",
    "ServiceName",
    "ServiceSubcategory",
    "SkuId",
    "SkuMeter",
    "SkuPriceDetails",
    "SkuPriceId",
    "SubAccountId",
    "SubAccountName",
    "SubAccountType",
    "Tags",
]


@dataclass(frozen=True)
class BillingPeriod:
    start: datetime
    end: datetime

    @classmethod
    def month(cls, text: str) -> BillingPeriod:
        """`YYYY-MM` -> that calendar month in UTC (ValueError when malformed)."""
        try:
            year, month = (int(part) for part in text.split("-"))
            first = date(year, month, 1)
        except (ValueError, TypeError) as error:
            raise ValueError(f"Not a month: {text!r} (use YYYY-MM).") from error
        following = date(year + (month == 12), month % 12 + 1, 1)
        return cls(
            datetime(first.year, first.month, 1, tzinfo=UTC),
            datetime(following.year, following.month, 1, tzinfo=UTC),
        )


def _number(value: Decimal | int) -> str:
    """A decimal number that always reads as one (`12.0`, never `12` or `1.2E+1`), so type
    inference of a CSV reader sees a decimal column."""
    text = csv_value(Decimal(value))
    return text if "." in text else f"{text}.0"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def focus_rows(*, scope: q.Scope, period: BillingPeriod, organization_name: str) -> Iterator[dict[str, Any]]:
    """The FOCUS rows of one organization (or one reader's keys) for one billing period."""
    queryset = scope.rollups().filter(hour__gte=period.start, hour__lt=period.end)
    grouped = (
        queryset.annotate(day=TruncDate("hour", tzinfo=UTC))
        .values("day", "team_id", "provider_name", "model_used", "deployment_name")
        .annotate(**q._sums(money=(*q.MONEY_COLUMNS, *q.LIST_COLUMNS), counts=True))
        .order_by("day", "team_id", "provider_name", "model_used", "deployment_name")
    )
    teams = _team_names(scope.organization_id)
    for raw in grouped:
        row = q._finish(dict(raw))
        day = row["day"] if isinstance(row["day"], date) else date.fromisoformat(str(row["day"])[:10])
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        for direction, tokens, cost, list_cost in (
            ("input", row["input_tokens"], row["input_cost"], row["list_input_cost"]),
            ("output", row["output_tokens"], row["output_cost"], row["list_output_cost"]),
        ):
            if not tokens and not cost and not list_cost:
                continue
            yield _row(
                scope=scope,
                organization_name=organization_name,
                period=period,
                start=start,
                team_id=row["team_id"],
                team_name=teams.get(row["team_id"], ""),
                provider=row["provider_name"] or "unknown",
                model=row["model_used"] or "unknown",
                deployment=row["deployment_name"],
                direction=direction,
                tokens=tokens,
                cost=cost,
                list_cost=list_cost,
            )


def _team_names(organization_id: int) -> dict[int, str]:
    from console.models import Team

    return dict(Team.objects.filter(organization_id=organization_id).values_list("id", "name"))


def _row(
    *,
    scope: q.Scope,
    organization_name: str,
    period: BillingPeriod,
    start: datetime,
    team_id: int | None,
    team_name: str,
    provider: str,
    model: str,
    deployment: str,
    direction: str,
    tokens: int,
    cost: Decimal,
    list_cost: Decimal,
) -> dict[str, Any]:
    """One charge. `cost` is what the organization was charged (its contracted prices, or
    the list prices where it has none): BilledCost, EffectiveCost and ContractedCost;
    `list_cost` is the same usage at the catalog's list prices."""
    quantity = (Decimal(tokens) / MILLION).normalize() if tokens else Decimal(0)
    unit_price = (cost / quantity).quantize(PRICE_QUANTUM) if quantity else Decimal(0)
    list_unit_price = (list_cost / quantity).quantize(PRICE_QUANTUM) if quantity else Decimal(0)
    row: dict[str, Any] = dict.fromkeys(COLUMNS)
    sku = f"{model}:{direction}"
    row.update(
        {
            "BilledCost": _number(cost),
            "BillingAccountId": f"org-{scope.organization_id}",
            "BillingAccountName": organization_name,
            "BillingAccountType": "Organization",
            "BillingCurrency": "USD",
            "BillingPeriodStart": _iso(period.start),
            "BillingPeriodEnd": _iso(period.end),
            "ChargeCategory": "Usage",
            "ChargeDescription": f"{model} {direction} tokens via {provider}",
            "ChargeFrequency": "Usage-Based",
            "ChargePeriodStart": _iso(start),
            "ChargePeriodEnd": _iso(start + timedelta(days=1)),
            "ConsumedQuantity": _number(tokens),
            "ConsumedUnit": "Tokens",
            "ContractedCost": _number(cost),
            "ContractedUnitPrice": _number(unit_price),
            "EffectiveCost": _number(cost),
            "InvoiceId": f"GH-{scope.organization_id}-{period.start:%Y%m}",
            "InvoiceIssuerName": provider,
            "ListCost": _number(list_cost),
            "ListUnitPrice": _number(list_unit_price),
            "PricingCategory": "Standard",
            "PricingCurrency": "USD",
            "PricingCurrencyContractedUnitPrice": _number(unit_price),
            "PricingCurrencyEffectiveCost": _number(cost),
            "PricingCurrencyListUnitPrice": _number(list_unit_price),
            "PricingQuantity": _number(quantity),
            "PricingUnit": "1000000 Tokens",
            "ProviderName": provider,
            "PublisherName": provider,
            "ResourceId": deployment or f"{provider}/{model}",
            "ResourceName": deployment or model,
            "ResourceType": "Model deployment",
            "ServiceCategory": "AI and Machine Learning",
            "ServiceName": f"{provider} models",
            "ServiceSubcategory": "Generative AI",
            "SkuId": sku,
            "SkuMeter": f"{direction.capitalize()} tokens",
            "SkuPriceId": sku,
            "SubAccountId": f"team-{team_id}" if team_id else f"org-{scope.organization_id}-unassigned",
            "SubAccountName": team_name or "No team",
            "SubAccountType": "Team",
            "Tags": "{}",
        }
    )
    return row


def focus_csv(out: Any, *, scope: q.Scope, period: BillingPeriod, organization_name: str) -> int:
    """Write the export as CSV to a file-like object; returns the number of rows."""
    count = 0

    def values() -> Iterator[list[Any]]:
        nonlocal count
        for row in focus_rows(scope=scope, period=period, organization_name=organization_name):
            count += 1
            yield [row[name] for name in COLUMNS]

    write_csv(out, COLUMNS, values())
    return count


__all__ = ["COLUMNS", "FOCUS_VERSION", "BillingPeriod", "focus_csv", "focus_rows", "csv_value"]
