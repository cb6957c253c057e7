"""Prompt-cache writes are billed at the provider's premium: 1.25x the input price for a
5-minute write, 2x for a 1-hour write, in exact Decimals, from the usage the Anthropic
adapter reads off the simulator over real HTTP to the stored usage record."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest
from asgiref.sync import async_to_sync
from httpx_aiohttp import AiohttpTransport

from budgets.models import UsageRecord
from budgets.pricing import cost_of
from budgets.usage import UsageEvent, UsageSink
from providers.adapters import get_adapter
from tests.providers.conftest import SimServer
from tests.providers.provider_testkit import make_target

PRICES = {"input_price": Decimal("3"), "output_price": Decimal("15"), "cached_input_price": Decimal("0.30")}


def test_cache_writes_cost_their_premium_exactly():
    cost = cost_of(
        input_tokens=10_000,
        output_tokens=1_000,
        cached_tokens=2_000,
        cache_write_5m_tokens=3_000,
        cache_write_1h_tokens=4_000,
        **PRICES,
    )
    # fresh 1000 x 3 + read 2000 x 0.30 + 5m 3000 x 3.75 + 1h 4000 x 6, per million
    assert cost.input == Decimal("0.0003") * 10 + Decimal("0.0006") + Decimal("0.01125") + Decimal("0.024")
    assert cost.input == Decimal("0.03885")
    assert cost.output == Decimal("0.015")
    assert isinstance(cost.total, Decimal)


def test_without_cache_writes_the_cost_is_what_it_was():
    before = cost_of(input_tokens=1234, output_tokens=56, cached_tokens=200, **PRICES)
    assert before.input == (Decimal(1034) * 3 + Decimal(200) * Decimal("0.30")) / 1_000_000


def test_cache_write_counts_never_bill_more_tokens_than_the_prompt():
    capped = cost_of(
        input_tokens=100,
        output_tokens=0,
        cached_tokens=40,
        cache_write_5m_tokens=50,
        cache_write_1h_tokens=500,
        **PRICES,
    )
    # 40 read, 50 written for 5 minutes, the 10 left written for an hour; nothing fresh.
    expected = (Decimal(40) * Decimal("0.30") + Decimal(50) * Decimal("3.75") + Decimal(10) * 6) / 1_000_000
    assert capped.input == expected.quantize(Decimal("1e-10"))


@pytest.fixture(scope="module")
def sim():
    server = SimServer()
    server.start()
    yield server
    server.stop()


async def _call(sim_url: str, request: dict):
    target = make_target(sim_url, "anthropic", "claude-sonnet-4-5")
    async with httpx.AsyncClient(transport=AiohttpTransport()) as http:
        return await get_adapter("anthropic").chat(http, target, request)


@pytest.mark.django_db(transaction=True)
def test_a_cache_writing_call_is_stored_with_its_premium(sim):
    manual = f"Manual {uuid.uuid4().hex}. " + "Deployments serve models behind routes. " * 150
    request = {
        "model": "claude-sonnet-4-5",
        "messages": [
            {
                "role": "system",
                "content": [{"type": "text", "text": manual, "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
            },
            {"role": "user", "content": "What serves models?"},
        ],
    }
    usage = async_to_sync(_call)(sim.url, request).usage
    assert usage.cache_write_1h_tokens >= 1024

    # What settle does with the adapter's usage (see docs/usage-durability.md).
    cost = cost_of(
        input_tokens=usage.prompt_tokens,
        output_tokens=usage.completion_tokens,
        cached_tokens=usage.cached_tokens,
        cache_write_5m_tokens=usage.cache_write_5m_tokens,
        cache_write_1h_tokens=usage.cache_write_1h_tokens,
        **PRICES,
    )
    plain = cost_of(
        input_tokens=usage.prompt_tokens,
        output_tokens=usage.completion_tokens,
        cached_tokens=usage.cached_tokens,
        **PRICES,
    )
    premium = Decimal(usage.cache_write_1h_tokens) * PRICES["input_price"] / 1_000_000
    assert cost.total - plain.total == premium.quantize(Decimal("1e-10"))

    sink = UsageSink(journal_dir=None, buffer_max=100)
    sink.add(
        UsageEvent(
            request_id=uuid.uuid4().hex,
            created_at=datetime.now(UTC),
            organization_id=1,
            endpoint="chat",
            status_code=200,
            input_tokens=usage.prompt_tokens,
            output_tokens=usage.completion_tokens,
            cached_tokens=usage.cached_tokens,
            cache_write_5m_tokens=usage.cache_write_5m_tokens,
            cache_write_1h_tokens=usage.cache_write_1h_tokens,
            input_cost=cost.input,
            output_cost=cost.output,
            cost=cost.total,
            **PRICES,
        )
    )
    assert sink.flush() == 1
    record = UsageRecord.objects.get()
    assert (record.cache_write_5m_tokens, record.cache_write_1h_tokens) == (0, usage.cache_write_1h_tokens)
    assert record.cost == cost.total
