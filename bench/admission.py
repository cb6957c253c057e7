"""The admission step's own cost: `budgets.facade.admit` on a request with budgets on
its organization, team, user and key and rate limits on its key, user and team —
one Lua script with Redis, one short transaction in a worker thread without.

    python bench/admission.py --store redis|db [--requests N]

Prints one JSON line: p50/p90/p99 of the admission in microseconds, and of the
settlement of a batch. Run by `bench/run.py` against its prepared database (the
organization "Bench Budgets").
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


async def measure(n: int) -> dict:
    from budgets import facade
    from budgets.admission import engine
    from budgets.clock import clock
    from budgets.conf import budget_settings
    from console.models import ApiKey

    key = await ApiKey.objects.select_related("organization").aget(organization__slug="bench-budgets")
    await facade.budgets_start()
    current = engine.engine()
    admit_us: list[float] = []
    settle_us: list[float] = []
    batch: list = []

    async def one() -> None:
        started = time.perf_counter()
        admission = await facade.admit(
            request_id=f"bench_{uuid.uuid4().hex}",
            organization_id=key.organization_id,
            team_id=key.team_id,
            user_id=key.user_id,
            key_id=key.id,
            at=clock.now(),
            cost=Decimal("0.00005"),
            tokens=40,
        )
        admit_us.append((time.perf_counter() - started) * 1e6)
        assert admission.ok, admission.refusal
        batch.append(admission)

    for _ in range(min(200, n)):  # warm-up: connections, scripts, counter rows
        await one()
    admit_us.clear()
    for index in range(n):
        await one()
        if len(batch) >= 16 or index == n - 1:
            for admission in batch:
                facade.settle(admission=admission, cost=Decimal("0.00004"), tokens=30, failed=False)
            batch.clear()
            started = time.perf_counter()
            await current.drain()
            settle_us.append((time.perf_counter() - started) * 1e6 / 16)
    await facade.budgets_stop()
    return {
        "store": "redis" if budget_settings().redis_url else "db",
        "requests": n,
        "admit_p50_us": round(pct(admit_us, 0.5), 1),
        "admit_p90_us": round(pct(admit_us, 0.9), 1),
        "admit_p99_us": round(pct(admit_us, 0.99), 1),
        "settle_per_request_p50_us": round(pct(settle_us, 0.5), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", choices=["db", "redis"], required=True)
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gatehouse.settings")
    if args.store == "db":
        os.environ["REDIS_URL"] = ""
    import django

    django.setup()
    import uvloop

    print(json.dumps(uvloop.run(measure(args.requests))))


if __name__ == "__main__":
    main()
