"""What the gateway pipeline may call: the `Budgets` owner and the values it returns.

A composition root creates `Budgets(clock=..., executor=...)`, starts it, and calls
`admit`, `settle`, `renew`, `reserve_more`, `deployment_take`, `deployment_give_back`,
`tick` and `changed` on it (see docs/budgets-runtime.md). Frozen dataclasses out; the
pipeline never touches budget models.

The module-level functions at the end are a bridge for callers that still use the
previous, module-level interface: each event loop gets its own `Budgets` there. They
go away once the gateway holds `gateway.budgets`.
"""

from __future__ import annotations

import asyncio
import weakref
from decimal import Decimal

from budgets.admission.types import Admission, Refusal
from budgets.clock import SYSTEM_CLOCK, Clock, FrozenClock, SystemClock
from budgets.conf import budget_settings
from budgets.runtime import (
    DEGRADED,
    FREE,
    OPEN_GATE,
    UNAVAILABLE_CODE,
    Budgets,
    BudgetUnavailable,
    DeploymentGate,
)

__all__ = [
    "DEGRADED",
    "FREE",
    "OPEN_GATE",
    "UNAVAILABLE_CODE",
    "Admission",
    "BudgetUnavailable",
    "Budgets",
    "Clock",
    "DeploymentGate",
    "FrozenClock",
    "Refusal",
    "SYSTEM_CLOCK",
    "SystemClock",
    "admit",
    "budgets_changed",
    "budgets_maintain",
    "budgets_start",
    "budgets_stop",
    "budgets_tick",
    "gate_deployments",
    "settle",
    "tick_interval",
]


def budgets_maintain() -> dict[str, int]:
    """Celery beat: release expired holds and write what is pending, with a short-lived owner;
    then retry alert deliveries that failed."""
    from budgets.alerts import alerts_retry

    released = Budgets(clock=SYSTEM_CLOCK).maintain()
    return {"released": released, "alerts_retried": alerts_retry()}


# --------------------------------------------------------------------------- bridge
# Transitional: the previous module-level interface, one owner per event loop. Remove
# with the calls in routing/runtime.py and routing/pipeline/admit.py once they use
# `gateway.budgets`.

_bridge: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Budgets] = weakref.WeakKeyDictionary()


def bridge_owners() -> list[Budgets]:
    """The owners the bridge created (tests refresh and reset them)."""
    return list(_bridge.values())


def _owner() -> Budgets:
    loop = asyncio.get_running_loop()
    found = _bridge.get(loop)
    if found is None:
        found = _bridge[loop] = Budgets(clock=SYSTEM_CLOCK)
    return found


async def admit(**kwargs) -> Admission:
    return await _owner().admit(**kwargs)


async def gate_deployments(*, deployment_ids: list[int], tokens: int) -> DeploymentGate:
    return await _owner().gate_deployments(deployment_ids=deployment_ids, tokens=tokens)


def settle(
    *, admission: Admission, cost: Decimal, tokens: int, failed: bool, extra_buckets: tuple[tuple[str, int], ...] = ()
) -> None:
    try:
        owner = _owner()
    except RuntimeError:
        owner = None
    if owner is not None:
        owner.settle(admission=admission, cost=cost, tokens=tokens, failed=failed, extra_buckets=extra_buckets)
        return
    from asgiref.sync import async_to_sync

    short = Budgets(clock=SYSTEM_CLOCK)

    async def run() -> None:
        short.settle(admission=admission, cost=cost, tokens=tokens, failed=failed, extra_buckets=extra_buckets)
        await short.stop()

    async_to_sync(run)()


def tick_interval() -> float:
    return budget_settings().tick


async def budgets_start() -> None:
    await _owner().start()


async def budgets_changed() -> None:
    await _owner().changed()


async def budgets_tick() -> None:
    await _owner().tick()


async def budgets_stop() -> None:
    found = _bridge.pop(asyncio.get_running_loop(), None)
    if found is not None:
        await found.stop()
