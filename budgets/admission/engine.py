"""Per-event-loop machinery: the settlement queue and the background tick.

Settlement is handed over synchronously (a list append) wherever the pipeline
ends a request; a task on the loop wakes at once and settles everything queued
in one database transaction or one Redis round trip. The tick (every
`GATEHOUSE_BUDGET_TICK` seconds, driven by the gateway runtime) writes the hold
ledger and counter mirror (Redis mode), releases expired holds, and records and
delivers alerts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref

from asgiref.sync import sync_to_async

from budgets.admission.db import db_reap, db_settle_many
from budgets.admission.ledger import ledger_buffer, mirror_write
from budgets.admission.redis_store import RedisStore, redis_store
from budgets.admission.types import Settlement, SettleResult
from budgets.alerts import alert_queue, alerts_deliver_detached, alerts_record
from budgets.clock import clock
from budgets.conf import budget_settings

logger = logging.getLogger(__name__)


def store() -> RedisStore | None:
    """The Redis store of the running loop, or None on the database path."""
    conf = budget_settings()
    if not conf.redis_url:
        return None
    return redis_store(conf.redis_url, conf.redis_prefix)


def booked(batch: list[Settlement], results: list[SettleResult]) -> None:
    """Alerts for the thresholds these settlements crossed (no I/O)."""
    for item, result in zip(batch, results, strict=True):
        if item.hold is None or not item.cost_units:
            continue
        for ref in item.hold.counters:
            after = result.spent.get(ref.ident)
            if after is not None:
                alert_queue.booked(ref, before=after - item.cost_units, after=after)


class BudgetEngine:
    def __init__(self) -> None:
        self.pending: list[Settlement] = []
        self.wake = asyncio.Event()
        self.drainer: asyncio.Task | None = None
        self.delivering: set[asyncio.Task] = set()
        self.last_reap = 0.0

    def start(self) -> None:
        if self.drainer is None:
            self.drainer = asyncio.get_running_loop().create_task(self._run())

    def enqueue(self, item: Settlement) -> None:
        self.pending.append(item)
        self.wake.set()

    async def _run(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            try:
                await self.drain()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("budget settlement failed; %d kept for a retry", len(self.pending))
                await asyncio.sleep(0.5)
                self.wake.set()

    async def drain(self) -> int:
        batch, self.pending = self.pending, []
        if not batch:
            return 0
        try:
            redis = store()
            if redis is not None:
                results = await redis.settle_many(batch)
                for item, result in zip(batch, results, strict=True):
                    if item.hold is not None:
                        ledger_buffer.settled(
                            item.hold, cost_units=item.cost_units, failed=item.failed, owned=result.owned, at=item.at
                        )
            else:
                results = await sync_to_async(db_settle_many)(batch)
        except BaseException:
            self.pending[:0] = batch
            raise
        booked(batch, results)
        return len(batch)

    async def tick(self, *, force_reap: bool = False) -> None:
        await self.drain()
        conf = budget_settings()
        redis = store()
        now = time.monotonic()
        if force_reap or now - self.last_reap >= conf.reap_interval:
            self.last_reap = now
            await self.reap()
        if redis is not None:
            if len(ledger_buffer):
                await sync_to_async(ledger_buffer.flush)()
            touched = ledger_buffer.take_touched()
            if touched:
                try:
                    values = await redis.counters_read(list(touched))
                    await sync_to_async(mirror_write)(values, touched)
                except BaseException:
                    ledger_buffer.retouch(touched)
                    raise
        crossings = alert_queue.take()
        if crossings:
            created = await sync_to_async(alerts_record)(crossings)
            if created:
                # Webhooks may be slow: deliver in a thread of its own, never the one the data plane uses.
                deliver = sync_to_async(alerts_deliver_detached, thread_sensitive=False)
                task = asyncio.ensure_future(deliver(alert_ids=created))
                self.delivering.add(task)
                task.add_done_callback(self._delivered)

    def _delivered(self, task: asyncio.Task) -> None:
        self.delivering.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("budget alert delivery failed", exc_info=task.exception())

    async def reap(self) -> int:
        at = clock.now()
        redis = store()
        if redis is None:
            return len(await sync_to_async(db_reap)(now=at))
        released = await redis.reap(now=at)
        for row in released:
            ledger_buffer.expired(row, at=at)
            ledger_buffer.touch_idents(row["counters"])
        return len(released)

    async def stop(self) -> None:
        if self.drainer is not None:
            self.drainer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.drainer
            self.drainer = None
        try:
            await self.tick()
        finally:
            if self.delivering:
                await asyncio.gather(*self.delivering, return_exceptions=True)
            redis = store()
            if redis is not None:
                from budgets.admission.redis_store import redis_store_forget

                redis_store_forget()
                await redis.close()


_engines: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, BudgetEngine] = weakref.WeakKeyDictionary()


def engine() -> BudgetEngine:
    """The engine of the running event loop, started on first use."""
    loop = asyncio.get_running_loop()
    current = _engines.get(loop)
    if current is None:
        current = _engines[loop] = BudgetEngine()
        current.start()
    return current


def engine_forget() -> BudgetEngine | None:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    return _engines.pop(loop, None)
