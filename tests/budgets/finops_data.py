"""Usage data for the FinOps page tests, written through the usage buffer and rolled up."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from budgets.rollups import usage_rollup_rebuild
from budgets.usage import UsageEvent, UsageSink

usage_buffer = UsageSink()  # the records these tests write, without a journal

MODELS = {
    # name: (provider, tier, input price, output price per 1M)
    "gpt-4o": ("openai", "frontier", Decimal("2.5"), Decimal("10")),
    "gpt-4o-mini": ("openai", "mid", Decimal("0.15"), Decimal("0.6")),
    "llama-3-8b": ("groq", "open-weight", Decimal("0.05"), Decimal("0.08")),
}


def usage_event(
    *, org_id: int, key, at: datetime, model: str, tokens: tuple[int, int] = (1000, 200), **extra
) -> UsageEvent:
    provider, tier, pin, pout = MODELS[model]
    input_cost = (tokens[0] * pin / 1_000_000).quantize(Decimal("1e-10"))
    output_cost = (tokens[1] * pout / 1_000_000).quantize(Decimal("1e-10"))
    fields = {
        "request_id": f"req_{uuid.uuid4().hex}",
        "created_at": at,
        "organization_id": org_id,
        "team_id": key.team_id,
        "user_id": key.user_id,
        "key_id": key.id,
        "endpoint": "chat",
        "status_code": 200,
        "model_requested": model,
        "model_used": model,
        "provider_name": provider,
        "deployment_name": f"{provider}-{model}",
        "attempts": 1,
        "input_tokens": tokens[0],
        "output_tokens": tokens[1],
        "input_price": pin,
        "output_price": pout,
        "cached_input_price": pin / 2,
        "input_cost": input_cost,
        "output_cost": output_cost,
        "cost": input_cost + output_cost,
        "latency_ms": 800.0,
        "ttft_ms": 120.0,
        "workflow": "triage",
        "metadata": {"tier": tier, "route": "support", "cascade_layer": 0},
    }
    fields.update(extra)
    return UsageEvent(**fields)


def seed_small(world, *, now: datetime | None = None, days: int = 40) -> datetime:
    """Two models a day on the member's key, one on the owner's key, for `days` days."""
    now = now or datetime.now(UTC)
    for day in range(days):
        at = now - timedelta(days=day, minutes=5)
        usage_buffer.add(usage_event(org_id=world.org.id, key=world.key, at=at, model="gpt-4o"))
        usage_buffer.add(
            usage_event(
                org_id=world.org.id,
                key=world.key,
                at=at,
                model="llama-3-8b",
                workflow="summarize",
                tags=["beta"],
                metadata={"tier": "open-weight", "route": "support", "cascade_layer": 1},
                cached_tokens=400,
            )
        )
        usage_buffer.add(
            usage_event(
                org_id=world.org.id,
                key=world.other_key,
                at=at,
                model="gpt-4o-mini",
                status_code=502 if day % 10 == 0 else 200,
                attempts=2 if day % 5 == 0 else 1,
            )
        )
    usage_buffer.flush()
    usage_rollup_rebuild()
    return now
