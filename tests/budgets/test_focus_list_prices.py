"""The FOCUS export takes list cost and list unit price from the catalog's list prices
recorded on each usage record, and billed, effective and contracted cost from what was
charged (the organization's contracted prices)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from budgets.finops import queries as q
from budgets.finops.focus import BillingPeriod, focus_rows
from budgets.rollups import rollup_check, usage_rollup_rebuild
from tests.budgets.finops_data import usage_buffer, usage_event

pytestmark = pytest.mark.django_db(transaction=True)

AT = datetime(2026, 3, 10, 12, tzinfo=UTC)
MILLION = Decimal(1_000_000)


def rows_by_sku(world) -> dict[str, dict]:
    scope = q.Scope(organization_id=world.org.id)
    rows = focus_rows(scope=scope, period=BillingPeriod.month("2026-03"), organization_name="Budget Org")
    return {row["SkuId"]: row for row in rows}


def test_focus_list_columns_come_from_list_prices_and_the_rest_from_the_contract(world):
    # gpt-4o: list 2.5 / 10 per 1M; this organization's contract: 2.0 / 8.
    tokens = (2_000_000, 500_000)
    contracted_in, contracted_out = Decimal("4"), Decimal("4")  # 2M x 2.0, 0.5M x 8
    list_in, list_out = Decimal("5"), Decimal("5")  # 2M x 2.5, 0.5M x 10
    usage_buffer.add(
        usage_event(
            org_id=world.org.id,
            key=world.key,
            at=AT,
            model="gpt-4o",
            tokens=tokens,
            input_price=Decimal("2"),
            output_price=Decimal("8"),
            input_cost=contracted_in,
            output_cost=contracted_out,
            cost=contracted_in + contracted_out,
            contracted_cost=contracted_in + contracted_out,
            list_input_price=Decimal("2.5"),
            list_output_price=Decimal("10"),
            list_cached_input_price=Decimal("1.25"),
            list_input_cost=list_in,
            list_output_cost=list_out,
            list_cost=list_in + list_out,
        )
    )
    # A record from before list prices were recorded: its list cost is what it cost.
    usage_buffer.add(usage_event(org_id=world.org.id, key=world.key, at=AT, model="gpt-4o-mini", tokens=(1_000_000, 0)))
    usage_buffer.flush()
    usage_rollup_rebuild()
    assert rollup_check(organization_id=world.org.id) == []

    rows = rows_by_sku(world)
    inp, out = rows["gpt-4o:input"], rows["gpt-4o:output"]
    assert Decimal(inp["BilledCost"]) == Decimal(inp["EffectiveCost"]) == Decimal(inp["ContractedCost"]) == Decimal(4)
    assert Decimal(inp["ListCost"]) == Decimal(5) and Decimal(out["ListCost"]) == Decimal(5)
    assert Decimal(inp["ContractedUnitPrice"]) == Decimal(2) and Decimal(inp["ListUnitPrice"]) == Decimal("2.5")
    assert Decimal(out["ContractedUnitPrice"]) == Decimal(8) and Decimal(out["ListUnitPrice"]) == Decimal(10)
    assert Decimal(inp["PricingCurrencyListUnitPrice"]) == Decimal("2.5")
    legacy = rows["gpt-4o-mini:input"]
    assert Decimal(legacy["ListCost"]) == Decimal(legacy["BilledCost"]) == Decimal("0.15")
    assert Decimal(legacy["ListUnitPrice"]) == Decimal(legacy["ContractedUnitPrice"]) == Decimal("0.15")


def test_a_request_lost_mid_stream_keeps_its_list_and_contracted_cost(world):
    from budgets.journal import _lost_record
    from budgets.records import event_encode

    begun = usage_event(
        org_id=world.org.id,
        key=world.key,
        at=AT,
        model="gpt-4o",
        tokens=(1_000_000, 0),
        input_price=Decimal("2"),
        output_price=Decimal("8"),
        list_input_price=Decimal("2.5"),
        list_output_price=Decimal("10"),
        list_cached_input_price=Decimal("1.25"),
    )
    record = _lost_record({"rec": event_encode(begun), "out": 500_000})
    assert record.cost == record.contracted_cost == Decimal("6")  # 1M x 2 + 0.5M x 8
    assert (record.list_input_cost, record.list_output_cost, record.list_cost) == (
        Decimal("2.5"),
        Decimal("5"),
        Decimal("7.5"),
    )
