"""Cost from tokens and per-1M prices. Decimal throughout.

Costs are rounded (half away from zero) to 1e-10 USD, the precision usage records
store and budget counters count in, so a record, a rollup and a counter hold the
very same number on every database.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

MILLION = Decimal(1_000_000)
ZERO = Decimal(0)
COST_QUANTUM = Decimal(1).scaleb(-10)
CACHE_WRITE_5M = Decimal("1.25")  # Anthropic: a 5-minute prompt-cache write costs 1.25x the input price
CACHE_WRITE_1H = Decimal(2)  # and a 1-hour write 2x


@dataclass(frozen=True, slots=True)
class Cost:
    input: Decimal
    output: Decimal

    @property
    def total(self) -> Decimal:
        return self.input + self.output


def cost_of(
    *,
    input_tokens: int,
    output_tokens: int,
    cached_tokens: int,
    input_price: Decimal,
    output_price: Decimal,
    cached_input_price: Decimal,
    cache_write_5m_tokens: int = 0,
    cache_write_1h_tokens: int = 0,
) -> Cost:
    """The cost of one call from its token counts and per-1M prices.

    `input_tokens` counts every prompt token, OpenAI-style: cache reads and cache
    writes included. Cache reads are billed at the cached price; prompt-cache writes
    (Anthropic) at the input price times 1.25 (5-minute cache) or 2 (1-hour cache);
    the rest at the input price. Counts larger than the prompt are capped to it, in
    that order, so a confused upstream can never bill one token twice.
    """
    cached = min(max(cached_tokens, 0), input_tokens)
    written_5m = min(max(cache_write_5m_tokens, 0), input_tokens - cached)
    written_1h = min(max(cache_write_1h_tokens, 0), input_tokens - cached - written_5m)
    fresh = input_tokens - cached - written_5m - written_1h
    input_cost = (
        Decimal(fresh) * input_price
        + Decimal(cached) * cached_input_price
        + Decimal(written_5m) * input_price * CACHE_WRITE_5M
        + Decimal(written_1h) * input_price * CACHE_WRITE_1H
    ) / MILLION
    output_cost = Decimal(output_tokens) * output_price / MILLION
    return Cost(
        input=input_cost.quantize(COST_QUANTUM, rounding=ROUND_HALF_UP),
        output=output_cost.quantize(COST_QUANTUM, rounding=ROUND_HALF_UP),
    )
