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
import uuid
import weakref
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from typing import Any

from django.db import Error as DatabaseError
from django.db import connections

from budgets.admission.db import DatabaseCounters
from budgets.admission.ledger import LedgerBuffer, mirror_write, restore_plan
from budgets.admission.ratelimit import LocalBuckets, buckets_for, rate_headers, wait_for
from budgets.admission.redis_store import RedisStore
from budgets.admission.snapshot import BudgetSnapshot, SnapshotHolder
from budgets.admission.types import (
    Admission,
    Bucket,
    CompiledLimit,
    CounterRef,
    Hold,
    Refusal,
    Settlement,
    SettleResult,
)
from budgets.alerts import AlertQueue, alerts_deliver_detached, alerts_record
from budgets.clock import Clock
from budgets.conf import BudgetSettings, budget_settings
from budgets.models import UNITS_PER_USD, units_to_usd, usd_to_units
from budgets.periods import PeriodCache
from gatehouse.money import money_format

logger = logging.getLogger(__name__)

FREE = Admission(hold=None, refusal=None, buckets=(), tokens=0, headers=())
DEGRADED = Admission(hold=None, refusal=None, buckets=(), tokens=0, headers=(), degraded=True)
UNAVAILABLE_CODE = "budget_store_unavailable"


class BudgetUnavailable(Exception):
    """The store that enforces budgets (`redis` or `database`) cannot be used: the request is not admitted."""

    code = UNAVAILABLE_CODE

    def __init__(self, store: str, detail: str) -> None:
        self.store = store
        self.detail = detail
        super().__init__(f"The budget store ({store}) is unavailable: {detail}")

    @property
    def refusal(self) -> Refusal:
        return Refusal(
            kind="unavailable",
            scope=self.store,
            label=self.store,
            message=(
                f"The gateway cannot check this request's budget right now (its {self.store} store is unavailable);"
                " it was not sent. Please retry shortly."
            ),
            retry_after=1.0,
            resets_at=None,
        )


def _redis_error(exc: BaseException) -> bool:
    return isinstance(exc, OSError | ConnectionError) or type(exc).__module__.startswith("redis")


def _money(units: int) -> str:
    return money_format(units_to_usd(units))


def _units_up(amount: Decimal) -> int:
    """A reservation rounds up: never reserve less than the worst case."""
    return int((amount * UNITS_PER_USD).to_integral_value(rounding=ROUND_CEILING))


def _budget_refusal(ref: CounterRef, *, used: int, amount: int, now: datetime) -> Refusal:
    budget = ref.budget
    left = max(0, budget.limit_units - used)
    resets = f"It resets at {ref.end.astimezone(budget.zone).isoformat()}." if ref.end else "It never resets."
    message = (
        f"Budget exceeded: the {budget.period} budget of {budget.label} ({_money(budget.limit_units)}) has "
        f"{_money(left)} left and this request may cost up to {_money(amount)}. {resets}"
    )
    retry = (ref.end - now).total_seconds() if ref.end is not None else None
    return Refusal(
        kind="budget", scope=budget.scope, label=budget.label, message=message, retry_after=retry, resets_at=ref.end
    )


def _rate_refusal(bucket: Bucket, level: float) -> Refusal:
    wait = wait_for(level, bucket.cost, bucket.capacity)
    unit = "requests per min (RPM)" if bucket.kind == "requests" else "tokens per min (TPM)"
    used = max(0, round(bucket.capacity - level))
    message = (
        f"Rate limit reached for {bucket.limit.label} on {unit}: Limit {bucket.capacity}, Used {used}, "
        f"Requested {bucket.cost}. Please try again in {wait:.3g}s."
    )
    return Refusal(
        kind=bucket.kind,
        scope=bucket.limit.scope,
        label=bucket.limit.label,
        message=message,
        retry_after=wait,
        resets_at=None,
    )


def _refused(refusal: Refusal, headers: tuple[tuple[str, str], ...] = ()) -> Admission:
    return Admission(hold=None, refusal=refusal, buckets=(), tokens=0, headers=headers)


def _token_buckets(buckets: tuple[tuple[str, int], ...]) -> tuple[tuple[str, int], ...]:
    return tuple(item for item in buckets if item[0].endswith(":tokens"))


class DeploymentGate:
    """Which of the candidate deployments to try, after their own rate limits."""

    __slots__ = ("skip", "refusal", "buckets", "tokens")

    def __init__(
        self,
        *,
        skip: int = 0,
        refusal: Refusal | None = None,
        buckets: tuple[tuple[str, int], ...] = (),
        tokens: int = 0,
    ) -> None:
        self.skip = skip  # candidates before this index are at their limits
        self.refusal = refusal
        self.buckets = buckets
        self.tokens = tokens


OPEN_GATE = DeploymentGate()


def _deployment_buckets(limit: CompiledLimit | None, tokens: int) -> tuple[Bucket | None, Bucket | None]:
    if limit is None:
        return None, None
    found = buckets_for([limit], tokens=tokens)
    requests = next((b for b in found if b.kind == "requests"), None)
    token_bucket = next((b for b in found if b.kind == "tokens"), None)
    return requests, token_bucket


class Budgets:
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
        self._pending: list[Settlement] = []
        self._renewals: dict[str, tuple[Hold, datetime]] = {}
        self._queue: list[tuple[Hold, asyncio.Future, asyncio.AbstractEventLoop]] = []
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
        """The change feed said `budgets`: rebuild the definitions."""
        await self._write(self.snapshot.refresh)

    async def stop(self) -> None:
        """Write what is pending, close this loop's Redis client, give back the threads' connections."""
        if self._drainer is not None:
            self._drainer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._drainer
            self._drainer = None
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
                            item.hold, cost_units=item.cost_units, failed=item.failed, owned=result.owned, at=item.at
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

    async def tick(self, *, force_reap: bool = False) -> None:
        """Settle what is queued, renew holds, release expired ones, write the ledger and mirror, alert."""
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

    async def admit(
        self,
        *,
        request_id: str,
        organization_id: int,
        team_id: int | None,
        user_id: int | None,
        key_id: int | None,
        at: datetime,
        cost: Decimal,
        tokens: int,
    ) -> Admission:
        """Admit a request whose worst case is `cost` USD and `tokens` tokens, or say why not.

        `at` is the request's start: it picks the period. Raises `BudgetUnavailable` when the
        store fails and the organization fails closed; returns a degraded admission when it
        fails open.
        """
        try:
            return await self._admit(
                request_id=request_id,
                organization_id=organization_id,
                team_id=team_id,
                user_id=user_id,
                key_id=key_id,
                at=at,
                cost=cost,
                tokens=tokens,
            )
        except BudgetUnavailable as exc:
            snapshot = self.snapshot.current
            served = snapshot is not None and organization_id in snapshot.fail_open
            self._warn(exc.store, organization_id, exc.detail, served=served)
            if served:
                return DEGRADED
            raise

    async def _admit(
        self,
        *,
        request_id: str,
        organization_id: int,
        team_id: int | None,
        user_id: int | None,
        key_id: int | None,
        at: datetime,
        cost: Decimal,
        tokens: int,
    ) -> Admission:
        snapshot = await self._snapshot()
        budgets, limits = snapshot.applicable(
            organization_id=organization_id, team_id=team_id, user_id=user_id, key_id=key_id
        )
        if not budgets and not limits:
            return FREE
        now = self.clock.now()
        refs = []
        for budget in budgets:
            start, end = self.periods.bounds(budget.period, at, budget.zone)
            refs.append(CounterRef(budget=budget, start=start, end=end, ident=f"{budget.id}:{int(start.timestamp())}"))
        refs_t = tuple(refs)
        amount = _units_up(cost)
        hold = None
        if refs_t:
            hold = Hold(
                request_id=request_id,
                organization_id=organization_id,
                counters=refs_t,
                amount_units=amount,
                created_at=at,
                expires_at=now + timedelta(seconds=self.conf.hold_ttl),
            )
        buckets = buckets_for(limits, tokens=tokens)
        charged = tuple((b.key, b.capacity) for b in buckets if b.kind == "tokens")
        redis = self.redis()
        if redis is not None:
            outcome, index, values = await self._redis_admit(
                redis, request_id=request_id, hold=hold, refs=refs_t, buckets=buckets
            )
            if outcome == "budget":
                ref = refs_t[index]
                if ref.budget.hard:
                    self.alerts.refused(ref, used=int(values[0]))
                return _refused(_budget_refusal(ref, used=int(values[0]), amount=amount, now=now))
            if outcome == "rate":
                bucket = buckets[index]
                return _refused(_rate_refusal(bucket, values[index]), rate_headers(buckets[: index + 1], values))
            if hold is not None:
                self.ledger.held(hold)
            return Admission(
                hold=hold, refusal=None, buckets=charged, tokens=tokens, headers=rate_headers(buckets, values)
            )
        index, levels = self.buckets.take(buckets)
        if index >= 0:
            return _refused(_rate_refusal(buckets[index], levels[index]), rate_headers(buckets, levels))
        if hold is not None:
            try:
                refused = await self._uncancellable(self._db_admit(hold), hold=hold, admitted=lambda r: r is None)
            except BaseException:
                self.buckets.refund(buckets)
                raise
            if refused is not None:
                self.buckets.refund(buckets)
                ref, used = refused
                if ref.budget.hard:
                    self.alerts.refused(ref, used=used)
                return _refused(_budget_refusal(ref, used=used, amount=amount, now=now))
        return Admission(hold=hold, refusal=None, buckets=charged, tokens=tokens, headers=rate_headers(buckets, levels))

    async def _redis_admit(
        self,
        redis: RedisStore,
        *,
        request_id: str,
        hold: Hold | None,
        refs: tuple[CounterRef, ...],
        buckets: list[Bucket],
    ) -> tuple[str, int, list[float]]:
        for _ in range(3):
            try:
                result = await self._uncancellable(
                    redis.admit(hold=hold, refs=refs, buckets=buckets, request_id=request_id),
                    hold=hold,
                    admitted=lambda r: r[0] == "ok",
                )
            except Exception as exc:
                if _redis_error(exc):
                    raise BudgetUnavailable("redis", str(exc) or type(exc).__name__) from exc
                raise
            if result[0] != "lost":
                return result
            await self._restore(redis)
        raise BudgetUnavailable("redis", "its counters were lost and are not restored yet")

    async def _restore(self, redis: RedisStore) -> None:
        """Redis lost its counters: put them back from the database (one process does it), or raise."""
        token = uuid.uuid4().hex
        try:
            if await redis.restore_lock(token):
                try:
                    if len(self.ledger):
                        await self._write(self.ledger.flush)
                    snapshot = await self._write(self.snapshot.refresh)
                    budgets = [budget for group in snapshot.budgets.values() for budget in group]
                    counters, holds = await self._write(restore_plan, budgets, at=self.clock.now())
                    if await redis.restore(counters=counters, holds=holds, epoch=f"{time.time():.0f}:{token}"):
                        logger.warning(
                            "Redis had lost the budget counters: restored %d counters and %d open holds "
                            "from the database",
                            len(counters),
                            len(holds),
                        )
                finally:
                    await redis.restore_unlock(token)
                return
            deadline = time.monotonic() + self.conf.restore_wait
            while time.monotonic() < deadline:
                await asyncio.sleep(0.05)
                if await redis.epoch_present():
                    return
        except DatabaseError as exc:
            raise BudgetUnavailable("redis", f"its counters were lost and the database is unavailable: {exc}") from exc
        except Exception as exc:
            if _redis_error(exc):
                raise BudgetUnavailable("redis", str(exc) or type(exc).__name__) from exc
            raise
        raise BudgetUnavailable("redis", "its counters were lost and another process is restoring them")

    async def _db_admit(self, hold: Hold) -> tuple[CounterRef, int] | None:
        """Queue the hold for the next group commit in the admission executor."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        with self._lock:
            self._queue.append((hold, future, loop))
            start = not self._committing
            self._committing = True
        if start:
            try:
                self.executor.submit(self._commit_loop)
            except RuntimeError as exc:  # the executor was shut down
                with self._lock:
                    self._committing = False
                raise BudgetUnavailable("database", str(exc)) from exc
        return await future

    def _commit_loop(self) -> None:
        """In the admission executor: decide queued holds, a batch per transaction, until none is left."""
        while True:
            with self._lock:
                batch = self._queue[: self.conf.group_commit_max]
                del self._queue[: len(batch)]
                if not batch:
                    self._committing = False
                    return
            self.largest_batch = max(self.largest_batch, len(batch))
            try:
                outcome: Any = self.db.admit_many([hold for hold, _, _ in batch])
            except DatabaseError as exc:
                outcome = BudgetUnavailable("database", str(exc).strip() or type(exc).__name__)
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting admissions
                outcome = exc
            for position, (_, future, loop) in enumerate(batch):
                value = outcome if isinstance(outcome, BaseException) else outcome[position]
                with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                    loop.call_soon_threadsafe(_resolve, future, value)

    async def _uncancellable(self, work, *, hold: Hold | None, admitted):
        """Run the reservation to its end even when the request is cancelled meanwhile (the
        client went away): a hold it placed is then released at once instead of expiring."""
        task = asyncio.ensure_future(work)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if hold is not None:

                def release(done: asyncio.Future) -> None:
                    if not done.cancelled() and done.exception() is None and admitted(done.result()):
                        self._enqueue(
                            Settlement(
                                hold=hold, cost_units=0, failed=True, buckets=(), token_delta=0, at=self.clock.now()
                            )
                        )

                task.add_done_callback(release)
            raise

    # ------------------------------------------------------------------ after admission

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
        with self._lock:
            if admission.hold is not None:
                self._renewals.pop(admission.hold.request_id, None)
        if admission.hold is None and not buckets:
            return
        delta = admission.tokens - tokens
        if buckets and not self.redis_mode:
            self.buckets.give_back(buckets, delta)
            buckets = ()
        if admission.hold is None and not buckets:
            return
        self._enqueue(
            Settlement(
                hold=admission.hold,
                cost_units=usd_to_units(cost),
                failed=failed,
                buckets=buckets,
                token_delta=delta,
                at=self.clock.now(),
            )
        )

    def renew(self, admission: Admission) -> None:
        """Keep a running request's hold alive: its expiry moves to now + the hold lifetime on the
        next tick (batched with every other renewal). Call it every ~30 s on a long stream."""
        hold = admission.hold
        if hold is None:
            return
        expires = self.clock.now() + timedelta(seconds=self.conf.hold_ttl)
        with self._lock:
            self._renewals[hold.request_id] = (hold, expires)

    async def _renew_pending(self) -> int:
        with self._lock:
            due, self._renewals = self._renewals, {}
        if not due:
            return 0
        try:
            redis = self.redis()
            if redis is not None:
                done = await redis.renew({rid: at.timestamp() for rid, (_, at) in due.items()})
                for rid, (_, at) in due.items():
                    self.ledger.renewed(rid, expires_at=at)
                return done
            return await self._write(self.db.renew, {rid: at for rid, (_, at) in due.items()})
        except BaseException:
            with self._lock:
                for rid, value in due.items():
                    self._renewals.setdefault(rid, value)
            raise

    async def reserve_more(self, admission: Admission, extra_cost: Decimal) -> Refusal | None:
        """Raise the request's hold by `extra_cost` USD on every counter it holds, or refuse (nothing
        changes then). Used before moving a running request to a pricier model."""
        hold = admission.hold
        if hold is None or extra_cost <= 0:
            return None
        extra = _units_up(extra_cost)
        now = self.clock.now()
        redis = self.redis()
        if redis is not None:
            try:
                outcome, index, value = await redis.raise_hold(hold=hold, extra=extra)
                if outcome == "lost":
                    await self._restore(redis)
                    outcome, index, value = await redis.raise_hold(hold=hold, extra=extra)
            except BudgetUnavailable:
                raise
            except Exception as exc:
                if _redis_error(exc):
                    raise BudgetUnavailable("redis", str(exc) or type(exc).__name__) from exc
                raise
            if outcome == "ok":
                self.ledger.raised(hold.request_id, amount_units=value)
                self.ledger.touch(hold.counters)
                return None
            if outcome == "budget":
                ref = hold.counters[index]
                return _budget_refusal(ref, used=value, amount=extra, now=now)
            return self._hold_gone(hold)
        loop = asyncio.get_running_loop()
        try:
            found = await loop.run_in_executor(self.executor, functools.partial(self.db.raise_hold, hold, extra))
        except DatabaseError as exc:
            raise BudgetUnavailable("database", str(exc)) from exc
        if found is None:
            return None
        ref, used = found
        if ref is None:
            return self._hold_gone(hold)
        return _budget_refusal(ref, used=used, amount=extra, now=now)

    def _hold_gone(self, hold: Hold) -> Refusal:
        return Refusal(
            kind="budget",
            scope=hold.counters[0].budget.scope,
            label=hold.counters[0].budget.label,
            message="The request's budget hold is no longer open (it expired or was settled); it cannot be raised.",
            retry_after=None,
            resets_at=None,
        )

    # ------------------------------------------------------------------ deployments

    async def gate_deployments(self, *, deployment_ids: list[int], tokens: int) -> DeploymentGate:
        """Skip candidate deployments at their RPM/TPM limit and charge the first one with room.

        Kept for callers that charge before knowing which deployment answers; prefer
        `deployment_take` on the deployment actually tried."""
        snapshot = await self._snapshot()
        if not snapshot.has_deployment_limits:
            return OPEN_GATE
        groups = [_deployment_buckets(snapshot.deployment_limit(d), tokens) for d in deployment_ids]
        if not any(a or b for a, b in groups):
            return OPEN_GATE
        redis = self.redis()
        if redis is not None:
            try:
                index, wait = await redis.gate(groups=groups)
            except Exception as exc:
                if _redis_error(exc):
                    raise BudgetUnavailable("redis", str(exc) or type(exc).__name__) from exc
                raise
        else:
            index, wait = self.buckets.gate(groups)
        if index < 0:
            first = next(b for pair in groups for b in pair if b is not None)
            limit = first.limit
            message = (
                f"Rate limit reached for every deployment serving this model ({limit.label} and others are at "
                f"their requests or tokens per minute). Please try again in {wait:.3g}s."
            )
            refusal = Refusal(
                kind="requests",
                scope="deployment",
                label=limit.label,
                message=message,
                retry_after=wait,
                resets_at=None,
            )
            return DeploymentGate(refusal=refusal)
        charged = groups[index][1]
        return DeploymentGate(skip=index, buckets=((charged.key, charged.capacity),) if charged else (), tokens=tokens)

    async def deployment_take(self, deployment_id: int, tokens: int) -> tuple[bool, tuple[tuple[str, int], ...]]:
        """Take one request and `tokens` from this deployment's RPM/TPM buckets, on all or none.

        (True, buckets) when taken — `buckets` are (key, capacity) pairs: pass them to `settle`
        as `extra_buckets` when the deployment answered (its tokens are trued up), or to
        `deployment_give_back` when the attempt failed before answering. (False, ()) when the
        deployment is at its limit. A deployment without limits: (True, ())."""
        snapshot = await self._snapshot()
        requests, token_bucket = _deployment_buckets(snapshot.deployment_limit(deployment_id), tokens)
        if requests is None and token_bucket is None:
            return True, ()
        group = (requests, token_bucket)
        redis = self.redis()
        if redis is not None:
            try:
                index, _ = await redis.gate(groups=[group])
            except Exception as exc:
                if _redis_error(exc):
                    raise BudgetUnavailable("redis", str(exc) or type(exc).__name__) from exc
                raise
        else:
            index, _ = self.buckets.gate([group])
        if index < 0:
            return False, ()
        return True, tuple((b.key, b.capacity) for b in group if b is not None)

    def deployment_give_back(self, buckets: tuple[tuple[str, int], ...], *, tokens: int) -> None:
        """Undo a `deployment_take` whose attempt failed before the deployment answered."""
        requests = tuple(item for item in buckets if item[0].endswith(":requests"))
        token_items = _token_buckets(buckets)
        for items, amount in ((requests, 1), (token_items, tokens)):
            if not items or not amount:
                continue
            if self.redis_mode:
                self._enqueue(
                    Settlement(
                        hold=None, cost_units=0, failed=True, buckets=items, token_delta=amount, at=self.clock.now()
                    )
                )
            else:
                self.buckets.give_back(items, amount)


def _resolve(future: asyncio.Future, value: Any) -> None:
    if future.done():
        return
    if isinstance(value, BaseException):
        future.set_exception(value)
    else:
        future.set_result(value)
