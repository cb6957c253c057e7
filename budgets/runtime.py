"""`Budgets`: everything the data plane keeps for budgets and rate limits, in one object.

A composition root (the gateway) creates one, owns it and passes it where it is needed;
management commands and Celery tasks create a short-lived one. It holds the compiled
definitions, the settlement queue, the hold ledger buffer, local token buckets, the
alert queue, the period cache and the Redis clients (one per event loop), and it runs
its database work in the executors it was given, never on the event loop and never
in the thread `sync_to_async` shares with the rest of the process.

Stores and their failures: with `REDIS_URL` the live counters are in Redis, else in the
database. When the store cannot be reached the admission raises `BudgetUnavailable`
naming it (code `budget_store_unavailable`), unless the organization's policy is to fail
open: then the request is admitted without a hold (`Admission.degraded`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
import threading
import time
import weakref
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import Error as DatabaseError
from django.db import connections

from budgets.admission.db import DatabaseCounters
from budgets.admission.leases import Leases
from budgets.admission.ledger import LedgerBuffer, mirror_write
from budgets.admission.ratelimit import LocalBuckets
from budgets.admission.redis_store import RedisStore
from budgets.admission.refusals import (  # refusals, store errors and the deployment gate
    BudgetUnavailable,
    _redis_error,
    _token_buckets,
)
from budgets.admission.snapshot import BudgetSnapshot, SnapshotHolder
from budgets.admission.types import (
    Admission,
    CounterRef,
    Hold,
    Settlement,
    SettleResult,
)
from budgets.alerts import AlertQueue, alerts_deliver_detached, alerts_record
from budgets.clock import Clock
from budgets.conf import BudgetSettings, budget_settings
from budgets.models import usd_to_units
from budgets.periods import PeriodCache
from budgets.runtime_admit import Admitting  # noqa: E402
from budgets.runtime_deployments import DeploymentLimiting  # noqa: E402
from budgets.runtime_holds import HoldUpkeep  # noqa: E402

logger = logging.getLogger(__name__)


class Budgets(Admitting, HoldUpkeep, DeploymentLimiting):
    """Budgets and rate limits of one gateway process (or one command run)."""

    def __init__(
        self,
        *,
        clock: Clock,
        executor: concurrent.futures.Executor | None = None,
        writer: concurrent.futures.Executor | None = None,
        database: str = "default",
        conf: BudgetSettings | None = None,
    ) -> None:
        self.clock = clock
        self.conf = conf or budget_settings()
        self._owned: list[concurrent.futures.ThreadPoolExecutor] = []
        if executor is None:
            executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="budgets-admit")
            self._owned.append(executor)
        if writer is None:
            writer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="budgets-write")
            self._owned.append(writer)
        self.executor = executor  # database admissions only
        self.writer = writer  # snapshot rebuilds, settlements, ledger, mirror, alerts
        self.snapshot = SnapshotHolder()
        self.ledger = LedgerBuffer()
        self.buckets = LocalBuckets()
        self.alerts = AlertQueue()
        self.periods = PeriodCache()
        self.db = DatabaseCounters(alias=database)
        self._lock = threading.Lock()
        self.leases = Leases(
            multiple=self.conf.lease_multiple,
            headroom=self.conf.lease_headroom,
            age=self.conf.lease_age,
            close=self._enqueue,
            now=self.clock.now,
        )
        self._pending: list[Settlement] = []
        self._renewals: dict[str, tuple[Hold, datetime]] = {}
        self._queue: list[tuple[Hold, asyncio.Future, asyncio.AbstractEventLoop]] = []
        self._placing: dict[tuple[str, ...], asyncio.Future] = {}  # leases being placed, by counters
        self._counters: dict[int, CounterRef] = {}  # budget id -> its counter of the current period
        self._committing = False
        self._stores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, RedisStore] = weakref.WeakKeyDictionary()
        self._drainer: asyncio.Task | None = None
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._delivering: set[asyncio.Task] = set()
        self._drain_lock = asyncio.Lock()  # binds to the loop that first waits on it
        self._last_reap = 0.0
        self._last_warning: dict[str, float] = {}
        self.unavailable = 0  # admissions that met a store failure (served degraded or refused)
        self.largest_batch = 0  # most database admissions decided together so far

    # ------------------------------------------------------------------ plumbing

    @property
    def redis_mode(self) -> bool:
        return bool(self.conf.redis_url)

    def redis(self) -> RedisStore | None:
        """The Redis store of the running loop, or None on the database path."""
        if not self.conf.redis_url:
            return None
        loop = asyncio.get_running_loop()
        found = self._stores.get(loop)
        if found is None:
            found = self._stores[loop] = RedisStore(self.conf.redis_url, self.conf.redis_prefix)
        return found

    async def _write(self, fn: Callable[..., Any], *args, **kwargs) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.writer, functools.partial(fn, *args, **kwargs))

    def snapshot_refresh(self) -> BudgetSnapshot:
        """Rebuild the definitions now, in the calling thread (tests, commands)."""
        return self.snapshot.refresh()

    async def _snapshot(self) -> BudgetSnapshot:
        current = self.snapshot.current
        if current is None:
            try:
                current = await self._write(self.snapshot.refresh)
            except DatabaseError as exc:
                raise BudgetUnavailable("database", str(exc)) from exc
        return current

    def reset(self) -> None:
        """Forget everything held in memory (tests between cases)."""
        self.buckets.clear()
        self.db.known.clear()
        self.alerts.clear()
        self.ledger.clear()
        self.leases.clear()
        self._counters.clear()
        with self._lock:
            self._pending.clear()
            self._renewals.clear()
        self.snapshot.current = None

    def _warn(self, store: str, organization_id: int, detail: str, *, served: bool) -> None:
        self.unavailable += 1
        now = time.monotonic()
        if now - self._last_warning.get(store, -60.0) >= 10.0:
            self._last_warning[store] = now
            logger.warning(
                "budget store %s unavailable (%s); organization %s %s",
                store,
                detail,
                organization_id,
                "served without a hold (fail open)" if served else "refused (fail closed)",
            )

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Load the definitions, start this loop's settlement task and make sure Redis has its counters."""
        self._loop = asyncio.get_running_loop()
        if self.snapshot.current is None:
            await self._write(self.snapshot.refresh)
        if self._drainer is None:
            self._wake = asyncio.Event()
            self._drainer = self._loop.create_task(self._run())
        redis = self.redis()
        if redis is not None:
            try:
                if not await redis.epoch_present():
                    await self._restore(redis)
            except (BudgetUnavailable, DatabaseError) as exc:
                logger.warning("budget counters not restored at start (%s); admissions will retry", exc)
            except Exception as exc:
                if not _redis_error(exc):
                    raise
                logger.warning("Redis unreachable at start (%s); admissions will retry", exc)

    async def changed(self) -> None:
        """The change feed said `budgets`: rebuild the definitions (leases taken under the old
        ones admit nothing more)."""
        await self._write(self.snapshot.refresh)
        self.leases.retire_all()

    async def stop(self) -> None:
        """Write what is pending, close this loop's Redis client, give back the threads' connections."""
        if self._drainer is not None:
            self._drainer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._drainer
            self._drainer = None
        self.leases.retire_all()
        try:
            await self.tick()
        finally:
            if self._delivering:
                await asyncio.gather(*self._delivering, return_exceptions=True)
            await self.close_loop()
            for pool in (self.executor, self.writer):
                with contextlib.suppress(RuntimeError):
                    await asyncio.get_running_loop().run_in_executor(pool, connections.close_all)
            for pool in self._owned:
                pool.shutdown(wait=False)

    async def close_loop(self) -> None:
        """Close the Redis client of the running loop (a short-lived loop ends)."""
        with contextlib.suppress(RuntimeError):
            store = self._stores.pop(asyncio.get_running_loop(), None)
            if store is not None:
                await store.close()

    def tick_interval(self) -> float:
        return self.conf.tick

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.drain()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("budget settlement failed; %d kept for a retry", len(self._pending))
                await asyncio.sleep(0.5)
                self._wake.set()

    def _enqueue(self, item: Settlement) -> None:
        with self._lock:
            self._pending.append(item)
        if item.hold is None:
            return  # only tokens to give back to Redis buckets: the next tick takes them, batched
        loop, wake = self._loop, self._wake
        if loop is None or wake is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            wake.set()
        else:
            loop.call_soon_threadsafe(wake.set)

    async def drain(self) -> int:
        """Settle everything queued. One drain at a time: a caller that drains (a tick, a test,
        shutdown) waits for the batch the background task has in flight, then takes the rest."""
        async with self._drain_lock:
            return await self._drain()

    async def _drain(self) -> int:
        with self._lock:
            batch, self._pending = self._pending, []
        if not batch:
            return 0
        try:
            redis = self.redis()
            if redis is not None:
                results = await redis.settle_many(batch)
                for item, result in zip(batch, results, strict=True):
                    if item.hold is not None:
                        self.ledger.settled(
                            item.hold,
                            cost_units=item.cost_units,
                            failed=item.failed,
                            owned=result.owned,
                            at=item.at,
                            members=item.members,
                        )
            else:
                results = await self._write(self.db.settle_many, batch)
        except BaseException:
            with self._lock:
                self._pending[:0] = batch
            raise
        self._booked(batch, results)
        return len(batch)

    def _booked(self, batch: list[Settlement], results: list[SettleResult]) -> None:
        for item, result in zip(batch, results, strict=True):
            if item.hold is None or not item.cost_units:
                continue
            for ref in item.hold.counters:
                after = result.spent.get(ref.ident)
                if after is not None:
                    self.alerts.booked(ref, before=after - item.cost_units, after=after)
                    self.leases.booked(ref.ident, after)

    async def tick(self, *, force_reap: bool = False) -> None:
        """Settle what is queued, renew holds, release expired ones, write the ledger and mirror, alert."""
        self.leases.retire_all(older_than=self.conf.lease_age)  # what they spent gets booked
        await self.drain()
        await self._renew_pending()
        now = time.monotonic()
        if force_reap or now - self._last_reap >= self.conf.reap_interval:
            self._last_reap = now
            await self.reap()
        redis = self.redis()
        if redis is not None:
            if len(self.ledger):
                await self._write(self.ledger.flush)
            touched = self.ledger.take_touched()
            if touched:
                try:
                    values = await redis.counters_read(list(touched))
                    await self._write(mirror_write, values, touched)
                except BaseException:
                    self.ledger.retouch(touched)
                    raise
        crossings = self.alerts.take()
        if crossings:
            created = await self._write(alerts_record, crossings)
            if created:
                # Webhooks may be slow: delivered in a thread of their own, never one the data plane uses.
                loop = asyncio.get_running_loop()
                task = asyncio.ensure_future(
                    loop.run_in_executor(None, functools.partial(alerts_deliver_detached, alert_ids=created))
                )
                self._delivering.add(task)
                task.add_done_callback(self._delivered)

    def _delivered(self, task: asyncio.Future) -> None:
        self._delivering.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("budget alert delivery failed", exc_info=task.exception())

    async def reap(self) -> int:
        at = self.clock.now()
        redis = self.redis()
        if redis is None:
            return len(await self._write(self.db.reap, now=at))
        released = await redis.reap(now=at)
        for row in released:
            self.ledger.expired(row, at=at)
            self.ledger.touch_idents(row["counters"])
        return len(released)

    def maintain(self) -> int:
        """Outside the gateway (Celery beat, commands): release expired holds, write what is pending."""
        from asgiref.sync import async_to_sync

        async def run() -> int:
            try:
                released = await self.reap()
                await self.tick()
                return released
            finally:
                await self.stop()

        return async_to_sync(run)()

    # ------------------------------------------------------------------ admission

    def settle(
        self,
        *,
        admission: Admission,
        cost: Decimal,
        tokens: int,
        failed: bool,
        extra_buckets: tuple[tuple[str, int], ...] = (),
    ) -> None:
        """Replace the hold by the actual cost (or release it) and true up the token buckets.

        Synchronous and cheap: the work is queued for the next drain (at once on the running loop).
        """
        buckets = _token_buckets(admission.buckets + extra_buckets)
        hold = admission.hold
        if admission.lease is not None and hold is not None:
            self.leases.settled(admission.lease, hold.request_id, cost_units=usd_to_units(cost))
            hold = None  # the lease is settled in the store once its last request is
        with self._lock:
            if hold is not None:
                self._renewals.pop(hold.request_id, None)
        if hold is None and not buckets:
            return
        delta = admission.tokens - tokens
        if buckets and not self.redis_mode:
            self.buckets.give_back(buckets, delta)
            buckets = ()
        if hold is None and not buckets:
            return
        self._enqueue(
            Settlement(
                hold=hold,
                cost_units=usd_to_units(cost),
                failed=failed,
                buckets=buckets,
                token_delta=delta,
                at=self.clock.now(),
            )
        )
