"""What the change feed's poll costs, and how much database work a flood of bad keys causes.

    .venv/bin/python bench/change_feed.py          # a few seconds, SQLite in var/bench-change-feed

1. `ChangeFeed.poll()` with nothing new, with 0 and with 1,000 tracked gaps (ids that
   may still commit), median of 200 polls.
2. 5,000 requests with distinct random keys from one address through `authenticate`:
   database lookups made and the most that ran at once, with the failed-auth limit
   (30 a minute) and with the limit off (only the lookup bound of 8 applies).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = ROOT / "var" / "bench-change-feed"
shutil.rmtree(DATA, ignore_errors=True)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gatehouse.settings")
os.environ["GATEHOUSE_DATA_DIR"] = str(DATA)
os.environ["DATABASE_URL"] = f"sqlite:///{DATA / 'bench.sqlite3'}"
os.environ.pop("REDIS_URL", None)

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

from console.authlimit import AuthLimitSettings, MemoryAuthLimiter  # noqa: E402
from console.changes import ChangeFeed, ChangeFeedSettings  # noqa: E402
from console.keycache import KeyCache, key_context_fetch  # noqa: E402
from console.models import ChangeEvent  # noqa: E402
from console.services import KEY_PREFIX, change_publish  # noqa: E402
from routing.errors import GatewayError  # noqa: E402
from routing.pipeline.authenticate import authenticate  # noqa: E402


def poll_cost(gaps: int) -> float:
    feed = ChangeFeed(ChangeFeedSettings(max_gaps=gaps + 10))
    feed.head()
    if gaps:
        ChangeEvent.objects.create(id=feed.cursor + gaps + 1, topic="catalog", ref="bench")
        feed.poll()
    samples = []
    for _ in range(200):
        start = time.perf_counter()
        feed.poll()
        samples.append(time.perf_counter() - start)
    assert len(feed.gaps) == gaps
    return statistics.median(samples) * 1000


class Counting:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls = self.running = self.most = 0

    def __call__(self, digest: str):
        with self.lock:
            self.calls += 1
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            return key_context_fetch(digest)
        finally:
            with self.lock:
                self.running -= 1


async def flood(limit: int, requests: int = 5000) -> tuple[int, int, dict[int, int]]:
    loader = Counting()
    statuses: dict[int, int] = {}
    with ThreadPoolExecutor(8) as executor:
        keys = KeyCache(executor=executor, loader=loader)
        limiter = MemoryAuthLimiter(AuthLimitSettings(limit=limit, window=60))

        async def one() -> None:
            try:
                await authenticate(
                    f"Bearer {KEY_PREFIX}{secrets.token_urlsafe(30)}", client="203.0.113.7", keys=keys, limiter=limiter
                )
            except GatewayError as exc:
                statuses[exc.status] = statuses.get(exc.status, 0) + 1

        await asyncio.gather(*(one() for _ in range(requests)))
    return loader.calls, loader.most, statuses


def main() -> None:
    call_command("migrate", verbosity=0)
    for _ in range(50):
        change_publish(topic="catalog", ref="seed")
    print(f"poll, nothing new, 0 gaps:     {poll_cost(0):.3f} ms")
    print(f"poll, nothing new, 1,000 gaps: {poll_cost(1000):.3f} ms")
    for limit in (30, 10**9):
        calls, most, statuses = asyncio.run(flood(limit))
        label = "limit 30/min" if limit == 30 else "limit off   "
        print(f"5,000 bad keys, one address, {label}: {calls} lookups, at most {most} at once, statuses {statuses}")


if __name__ == "__main__":
    main()
