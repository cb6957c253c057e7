"""Keeping holds alive and raising them while a request runs."""

from __future__ import annotations

import asyncio
import functools
import logging
from datetime import timedelta
from decimal import Decimal

from django.db import Error as DatabaseError

from budgets.admission.refusals import (  # refusals, store errors and the deployment gate
    BudgetUnavailable,
    _budget_refusal,
    _redis_error,
    _units_up,
)
from budgets.admission.types import (
    Admission,
    Hold,
    Refusal,
)

logger = logging.getLogger(__name__)


class HoldUpkeep:
    """Part of `budgets.runtime.Budgets` (mixed into it); uses its stores, queues and settings."""

    def renew(self, admission: Admission) -> None:
        """Keep a running request's hold alive: its expiry moves to now + the hold lifetime on the
        next tick (batched with every other renewal). Call it every ~30 s on a long stream."""
        hold = admission.hold if admission.lease is None else admission.lease.hold
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
        lease = admission.lease
        if lease is not None:
            if self.leases.more(lease, hold.request_id, extra):
                return None
            # The lease has no room left for it: the store raises the lease's hold, or refuses.
            refusal = await self._raise(lease.hold, extra)
            if refusal is None:
                self.leases.grown(lease, hold.request_id, extra)
            return refusal
        return await self._raise(hold, extra)

    async def _raise(self, hold: Hold, extra: int) -> Refusal | None:
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
