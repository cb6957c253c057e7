"""Admission: reserving a request's worst case on every budget and rate limit, on Redis or the database."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import Error as DatabaseError

from budgets.admission.leases import Lease
from budgets.admission.ledger import restore_plan
from budgets.admission.ratelimit import buckets_for, rate_headers
from budgets.admission.redis_store import RedisStore
from budgets.admission.refusals import (  # refusals, store errors and the deployment gate
    DEGRADED,
    FREE,
    BudgetUnavailable,
    _budget_refusal,
    _rate_refusal,
    _redis_error,
    _refused,
    _units_up,
)
from budgets.admission.types import (
    Admission,
    Bucket,
    CompiledBudget,
    CounterRef,
    Hold,
    Settlement,
)
from budgets.runtime_resolve import _resolve

logger = logging.getLogger(__name__)


class Admitting:
    """Part of `budgets.runtime.Budgets` (mixed into it); uses its stores, queues and settings."""

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
        refs_t = tuple(self._counter(budget, at) for budget in budgets)
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
        lease = await self._leased(hold) if hold is not None and self.leases.enabled else None
        redis = self.redis()
        if lease is not None:
            assert hold is not None
            if redis is not None:
                values: list[float] = []
                if buckets:
                    try:
                        outcome, index, values = await self._redis_admit(
                            redis, request_id=request_id, hold=None, refs=(), buckets=buckets
                        )
                    except BaseException:
                        self.leases.cancel(lease, request_id)
                        raise
                    if outcome == "rate":
                        self.leases.cancel(lease, request_id)
                        bucket = buckets[index]
                        return _refused(
                            _rate_refusal(bucket, values[index]), rate_headers(buckets[: index + 1], values)
                        )
            else:
                index, values = self.buckets.take(buckets)
                if index >= 0:
                    self.leases.cancel(lease, request_id)
                    return _refused(_rate_refusal(buckets[index], values[index]), rate_headers(buckets, values))
            return Admission(
                hold=hold,
                refusal=None,
                buckets=charged,
                tokens=tokens,
                headers=rate_headers(buckets, values),
                lease=lease,
            )
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

    def _counter(self, budget: CompiledBudget, at: datetime) -> CounterRef:
        """The budget's counter for the period `at` falls in (the same object all period long)."""
        cached = self._counters.get(budget.id)
        if (
            cached is not None
            and cached.budget is budget
            and cached.start <= at
            and (cached.end is None or at < cached.end)
        ):
            return cached
        start, end = self.periods.bounds(budget.period, at, budget.zone)
        ref = CounterRef(budget=budget, start=start, end=end, ident=f"{budget.id}:{int(start.timestamp())}")
        if end is None or at < end:
            self._counters[budget.id] = ref
        return ref

    async def _leased(self, hold: Hold) -> Lease | None:
        """Admit `hold` within this process's lease on its counters, placing a new lease when
        the budgets have room for one (budgets/admission/leases.py); None: admit it on its own."""
        leases = self.leases
        lease = leases.take(hold)
        if lease is not None:
            if leases.low(lease):
                self._lease_next(hold)  # placed in the background while this one still admits
            return lease
        placing = self._lease_next(hold)
        if placing is None or not await asyncio.shield(placing):
            return None
        return leases.take(hold)

    def _lease_next(self, hold: Hold) -> asyncio.Future | None:
        """The placement of the next lease on `hold`'s counters: the one under way, a new one,
        or None when the budgets are too near their limits for a lease."""
        key = tuple(ref.ident for ref in hold.counters)
        placing = self._placing.get(key)
        if placing is not None:
            return placing  # requests that arrive together wait for one lease, not one each
        amount = self.leases.size(hold)
        if not amount:
            return None
        placing = asyncio.ensure_future(self._lease_place(hold, amount))
        self._placing[key] = placing
        placing.add_done_callback(functools.partial(self._lease_placed, key))
        return placing

    def _lease_placed(self, key: tuple[str, ...], placing: asyncio.Future) -> None:
        if self._placing.get(key) is placing:
            del self._placing[key]
        if not placing.cancelled() and placing.exception() is not None:
            logger.debug("placing a budget lease failed (%s); admitting on their own", placing.exception())

    async def _lease_place(self, hold: Hold, amount: int) -> bool:
        lease_hold = self.leases.lease_hold(hold, amount, ttl=self.conf.hold_ttl)
        redis = self.redis()
        if redis is not None:
            outcome, _, _ = await self._redis_admit(
                redis, request_id=lease_hold.request_id, hold=lease_hold, refs=lease_hold.counters, buckets=[]
            )
            placed = outcome == "ok"
            if placed:
                self.ledger.held(lease_hold)
        else:
            refused = await self._uncancellable(
                self._db_admit(lease_hold), hold=lease_hold, admitted=lambda r: r is None
            )
            placed = refused is None
        if placed:
            self.leases.placed(lease_hold)
        else:
            self.leases.refused(hold)
        return placed

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
