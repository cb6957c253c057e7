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
) -> Cost:
    """Cached prompt tokens are billed at the cached price, the rest at the input price."""
    cached = min(cached_tokens, input_tokens)
    fresh = input_tokens - cached
    input_cost = (Decimal(fresh) * input_price + Decimal(cached) * cached_input_price) / MILLION
    output_cost = Decimal(output_tokens) * output_price / MILLION
    return Cost(
        input=input_cost.quantize(COST_QUANTUM, rounding=ROUND_HALF_UP),
        output=output_cost.quantize(COST_QUANTUM, rounding=ROUND_HALF_UP),
    )
