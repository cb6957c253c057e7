"""What the gateway pipeline may call: admission, settlement and the runtime hooks.

Returns frozen dataclasses; the pipeline never touches budget models. No call
here runs a synchronous query on the event loop: definitions come from an
in-process snapshot, the admission is one Lua script (Redis) or one short
transaction in a worker thread (database), settlement is queued.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, Decimal

from asgiref.sync import sync_to_async

from budgets.admission import engine as engine_module
from budgets.admission.db import db_admit
from budgets.admission.ledger import ledger_buffer, mirror_current
from budgets.admission.ratelimit import buckets_for, local_buckets, rate_headers, wait_for
from budgets.admission.snapshot import budget_snapshot
from budgets.admission.types import (
    Admission,
    Bucket,
    CompiledLimit,
    CounterRef,
    Hold,
    Refusal,
    Settlement,
)
from budgets.alerts import alert_queue
from budgets.clock import clock
from budgets.conf import budget_settings
from budgets.models import UNITS_PER_USD, units_to_usd, usd_to_units
from budgets.periods import PeriodCache
from gatehouse.money import money_format

logger = logging.getLogger(__name__)

__all__ = [
    "Admission",
    "DeploymentGate",
    "Refusal",
    "admit",
    "budgets_start",
    "budgets_stop",
    "budgets_tick",
    "budgets_changed",
    "gate_deployments",
    "settle",
    "tick_interval",
]

FREE = Admission(hold=None, refusal=None, buckets=(), tokens=0, headers=())
_periods = PeriodCache()


class BudgetUnavailable(Exception):
    """The store that enforces budgets cannot be reached: the request is not admitted."""


def _money(units: int) -> str:
    return money_format(units_to_usd(units))


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


def _units_up(amount: Decimal) -> int:
    """A reservation rounds up: never reserve less than the worst case."""
    return int((amount * UNITS_PER_USD).to_integral_value(rounding=ROUND_CEILING))


async def admit(
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

    `at` is the request's start: it picks the period, so the counter and the usage
    record agree about which period a request belongs to.
    """
    snapshot = budget_snapshot.current
    if snapshot is None:
        snapshot = await sync_to_async(budget_snapshot.refresh)()
    budgets, limits = snapshot.applicable(
        organization_id=organization_id, team_id=team_id, user_id=user_id, key_id=key_id
    )
    if not budgets and not limits:
        return FREE
    now = clock.now()
    refs = []
    for budget in budgets:
        start, end = _periods.bounds(budget.period, at, budget.zone)
        refs.append(CounterRef(budget=budget, start=start, end=end, ident=f"{budget.id}:{int(start.timestamp())}"))
    refs_t = tuple(refs)
    amount = _units_up(cost)
    hold = None
    if refs_t:
        expires = now + timedelta(seconds=budget_settings().hold_ttl)
        hold = Hold(
            request_id=request_id,
            organization_id=organization_id,
            counters=refs_t,
            amount_units=amount,
            created_at=at,
            expires_at=expires,
        )
    buckets = buckets_for(limits, tokens=tokens)
    charged = tuple((b.key, b.capacity) for b in buckets if b.kind == "tokens")
    redis = engine_module.store()
    if redis is not None:
        try:
            outcome, index, values = await _uncancellable(
                redis.admit(hold=hold, refs=refs_t, buckets=buckets, request_id=request_id),
                hold=hold,
                admitted=lambda result: result[0] == "ok",
            )
        except (OSError, ConnectionError) as exc:
            raise BudgetUnavailable(str(exc)) from exc
        except Exception as exc:
            if type(exc).__module__.startswith("redis"):
                raise BudgetUnavailable(str(exc)) from exc
            raise
        if outcome == "budget":
            ref = refs_t[index]
            if ref.budget.hard:
                alert_queue.refused(ref, used=int(values[0]))
            return Admission(
                hold=None,
                refusal=_budget_refusal(ref, used=int(values[0]), amount=amount, now=now),
                buckets=(),
                tokens=0,
                headers=(),
            )
        if outcome == "rate":
            bucket = buckets[index]
            refusal = _rate_refusal(bucket, values[index])
            return Admission(
                hold=None, refusal=refusal, buckets=(), tokens=0, headers=rate_headers(buckets[: index + 1], values)
            )
        if hold is not None:
            ledger_buffer.held(hold)
        return Admission(hold=hold, refusal=None, buckets=charged, tokens=tokens, headers=rate_headers(buckets, values))
    index, levels = local_buckets.take(buckets)
    if index >= 0:
        return Admission(
            hold=None,
            refusal=_rate_refusal(buckets[index], levels[index]),
            buckets=(),
            tokens=0,
            headers=rate_headers(buckets, levels),
        )
    if hold is not None:
        try:
            refused = await _uncancellable(
                sync_to_async(db_admit)(hold=hold), hold=hold, admitted=lambda result: result is None
            )
        except BaseException:
            local_buckets.refund(buckets)
            raise
        if refused is not None:
            local_buckets.refund(buckets)
            ref, used = refused
            if ref.budget.hard:
                alert_queue.refused(ref, used=used)
            return Admission(
                hold=None,
                refusal=_budget_refusal(ref, used=used, amount=amount, now=now),
                buckets=(),
                tokens=0,
                headers=(),
            )
    return Admission(hold=hold, refusal=None, buckets=charged, tokens=tokens, headers=rate_headers(buckets, levels))


async def _uncancellable(work, *, hold: Hold | None, admitted):
    """Run the reservation to its end even when the request is cancelled meanwhile (the
    client went away): a hold it placed is then released at once instead of expiring."""
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        if hold is not None:

            def release(done: asyncio.Task) -> None:
                if not done.cancelled() and done.exception() is None and admitted(done.result()):
                    engine_module.engine().enqueue(
                        Settlement(hold=hold, cost_units=0, failed=True, buckets=(), token_delta=0, at=clock.now())
                    )

            task.add_done_callback(release)
        raise


def settle(
    *, admission: Admission, cost: Decimal, tokens: int, failed: bool, extra_buckets: tuple[tuple[str, int], ...] = ()
) -> None:
    """Replace the hold by the actual cost (or release it) and true up the token buckets.

    Synchronous and cheap: the work is queued for the loop's settlement task.
    """
    buckets = admission.buckets + extra_buckets
    if admission.hold is None and not buckets:
        return
    delta = admission.tokens - tokens
    redis_mode = bool(budget_settings().redis_url)
    if buckets and not redis_mode:
        local_buckets.give_back(buckets, delta)
        buckets = ()
    if admission.hold is None and not buckets:
        return
    item = Settlement(
        hold=admission.hold,
        cost_units=usd_to_units(cost),
        failed=failed,
        buckets=buckets,
        token_delta=delta,
        at=clock.now(),
    )
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        _settle_now(item)
        return
    engine_module.engine().enqueue(item)


def _settle_now(item: Settlement) -> None:
    """Outside an event loop (management commands, tests): settle at once."""
    from asgiref.sync import async_to_sync

    async def run() -> None:
        current = engine_module.engine()
        current.enqueue(item)
        await current.stop()
        engine_module.engine_forget()

    async_to_sync(run)()


# --------------------------------------------------------------------------- deployments


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


async def gate_deployments(*, deployment_ids: list[int], tokens: int) -> DeploymentGate:
    """Skip candidate deployments at their RPM/TPM limit and charge the first one with room."""
    snapshot = budget_snapshot.current
    if snapshot is None or not snapshot.has_deployment_limits:
        return OPEN_GATE
    groups = [_deployment_buckets(snapshot.deployment_limit(d), tokens) for d in deployment_ids]
    if not any(a or b for a, b in groups):
        return OPEN_GATE
    redis = engine_module.store()
    if redis is not None:
        try:
            index, wait = await redis.gate(groups=groups)
        except (OSError, ConnectionError) as exc:
            raise BudgetUnavailable(str(exc)) from exc
    else:
        index, wait = local_buckets.gate(groups)
    if index < 0:
        first = next(b for pair in groups for b in pair if b is not None)
        limit = first.limit
        message = (
            f"Rate limit reached for every deployment serving this model ({limit.label} and others are at their "
            f"requests or tokens per minute). Please try again in {wait:.3g}s."
        )
        refusal = Refusal(
            kind="requests", scope="deployment", label=limit.label, message=message, retry_after=wait, resets_at=None
        )
        return DeploymentGate(refusal=refusal)
    charged = groups[index][1]
    return DeploymentGate(skip=index, buckets=((charged.key, charged.capacity),) if charged else (), tokens=tokens)


# --------------------------------------------------------------------------- runtime hooks


def tick_interval() -> float:
    return budget_settings().tick


async def budgets_start() -> None:
    """Load the definitions and start this loop's settlement task."""
    if budget_snapshot.current is None:
        await sync_to_async(budget_snapshot.refresh)()
    engine_module.engine()
    await _seed_redis()


async def budgets_changed() -> None:
    """The change feed announced the `budgets` topic: rebuild the snapshot."""
    await sync_to_async(budget_snapshot.refresh)()
    await _seed_redis()


async def _seed_redis() -> None:
    """Give Redis back the current periods' spend it does not have (never lowers a counter)."""
    redis = engine_module.store()
    snapshot = budget_snapshot.current
    if redis is None or snapshot is None or not snapshot.budgets:
        return
    budgets = [budget for group in snapshot.budgets.values() for budget in group]
    rows = await sync_to_async(mirror_current)(budgets, at=clock.now())
    seeded = 0
    for ident, spent, expire_at in rows:
        seeded += await redis.counter_seed(ident, spent=spent, expire_at=expire_at)
    if seeded:
        logger.warning("restored %d budget counters in Redis from their database mirror", seeded)


async def budgets_tick() -> None:
    await engine_module.engine().tick()


async def budgets_stop() -> None:
    current = engine_module.engine_forget()
    if current is not None:
        await current.stop()


def budgets_maintain() -> dict[str, int]:
    """Outside the gateway (Celery beat): release expired holds, write what is pending, retry alerts.

    Gateway processes do this themselves every few seconds; this covers the time
    when none is running.
    """
    from asgiref.sync import async_to_sync

    from budgets.alerts import alerts_retry

    released = 0

    async def run() -> None:
        nonlocal released
        current = engine_module.engine()
        try:
            released = await current.reap()
        finally:
            await current.stop()
            engine_module.engine_forget()

    async_to_sync(run)()
    return {"released": released, "alerts_retried": alerts_retry()}
