"""The admission step's own cost: `Budgets.admit` on a request with budgets on
its organization, team, user and key and rate limits on its key, user and team —
one Lua script with Redis, one short transaction in the admission executor without.

    python bench/admission.py --store redis|db [--requests N] [--concurrency C]
        [--group-commit-max M] [--busy-writer]

`--concurrency` runs C admissions at once (as C concurrent requests would);
`--group-commit-max 1` turns group commit off (one transaction per admission);
`--busy-writer` keeps the process's shared `sync_to_async` thread busy with 20 ms
database jobs meanwhile (a slow usage flush), which admissions no longer wait for.

Prints one JSON line: p50/p90/p99 of the admission in microseconds, and of the
settlement of a batch. Run by `bench/run.py` against its prepared database (the
organization "Bench Budgets").
"""

from __future__ import annotations

import argparse
import asyncio
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


async def measure(n: int, concurrency: int, busy_writer: bool) -> dict:
    from asgiref.sync import sync_to_async

    from budgets.clock import SYSTEM_CLOCK
    from budgets.runtime import Budgets
    from console.models import ApiKey

    key = await ApiKey.objects.select_related("organization").aget(organization__slug="bench-budgets")
    owner = Budgets(clock=SYSTEM_CLOCK)
    await owner.start()
    admit_us: list[float] = []
    settle_us: list[float] = []
    batch: list = []

    async def one() -> None:
        started = time.perf_counter()
        admission = await owner.admit(
            request_id=f"bench_{uuid.uuid4().hex}",
            organization_id=key.organization_id,
            team_id=key.team_id,
            user_id=key.user_id,
            key_id=key.id,
            at=SYSTEM_CLOCK.now(),
            cost=Decimal("0.00005"),
            tokens=40,
        )
        admit_us.append((time.perf_counter() - started) * 1e6)
        assert admission.ok, admission.refusal
        batch.append(admission)

    async def settle_batch() -> None:
        for admission in batch:
            owner.settle(admission=admission, cost=Decimal("0.00004"), tokens=30, failed=False)
        count = len(batch)
        batch.clear()
        started = time.perf_counter()
        await owner.drain()
        settle_us.append((time.perf_counter() - started) * 1e6 / max(1, count))

    def slow_job() -> None:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        time.sleep(0.02)

    stop = asyncio.Event()

    async def writer() -> None:
        job = sync_to_async(slow_job)
        while not stop.is_set():
            await job()

    for _ in range(min(200, n)):  # warm-up: connections, scripts, counter rows
        await one()
    admit_us.clear()
    busy = asyncio.ensure_future(writer()) if busy_writer else None
    done = 0
    while done < n:
        wave = min(concurrency, n - done)
        await asyncio.gather(*(one() for _ in range(wave)))
        done += wave
        if len(batch) >= 16 or done >= n:
            await settle_batch()
    stop.set()
    if busy is not None:
        await busy
    await owner.stop()
    return {
        "store": "redis" if owner.conf.redis_url else "db",
        "requests": n,
        "concurrency": concurrency,
        "group_commit_max": owner.conf.group_commit_max,
        "busy_writer": busy_writer,
        "admit_p50_us": round(pct(admit_us, 0.5), 1),
        "admit_p90_us": round(pct(admit_us, 0.9), 1),
        "admit_p99_us": round(pct(admit_us, 0.99), 1),
        "settle_per_request_p50_us": round(pct(settle_us, 0.5), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", choices=["db", "redis"], required=True)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--group-commit-max", type=int, default=None)
    parser.add_argument("--busy-writer", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gatehouse.settings")
    if args.store == "db":
        os.environ["REDIS_URL"] = ""
    if args.group_commit_max is not None:
        os.environ["GATEHOUSE_BUDGET_GROUP_COMMIT_MAX"] = str(args.group_commit_max)
    import django

    django.setup()
    import uvloop

    print(json.dumps(uvloop.run(measure(args.requests, max(1, args.concurrency), args.busy_writer))))


if __name__ == "__main__":
    main()
