"""Plain values the admission works with; frozen so they can be shared freely."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from budgets.admission.leases import Lease


@dataclass(frozen=True, slots=True)
class CompiledBudget:
    id: int
    organization_id: int
    scope: str
    scope_id: int
    label: str  # "team Research"
    period: str
    zone: ZoneInfo
    limit_units: int
    hard: bool
    thresholds: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class CompiledLimit:
    scope: str
    scope_id: int
    label: str
    rpm: int | None
    tpm: int | None


@dataclass(frozen=True, slots=True)
class CounterRef:
    """One budget's counter for one period: what a hold is placed on."""

    budget: CompiledBudget
    start: datetime
    end: datetime | None
    ident: str  # "<budget id>:<period start, epoch seconds>"


@dataclass(frozen=True, slots=True)
class Bucket:
    """A token bucket: `capacity` per minute, refilled continuously."""

    key: str  # "<scope>:<id>:requests" | "<scope>:<id>:tokens"
    kind: str  # requests | tokens
    capacity: int
    cost: int
    limit: CompiledLimit


@dataclass(frozen=True, slots=True)
class Hold:
    """A reservation on every applicable budget counter, to be settled once."""

    request_id: str
    organization_id: int
    counters: tuple[CounterRef, ...]
    amount_units: int
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Refusal:
    kind: str  # budget | requests | tokens
    scope: str
    label: str
    message: str
    retry_after: float | None  # seconds
    resets_at: datetime | None


@dataclass(frozen=True, slots=True)
class Admission:
    hold: Hold | None
    refusal: Refusal | None
    buckets: tuple[tuple[str, int], ...]  # token buckets charged: (key, capacity), adjusted at settlement
    tokens: int  # tokens charged to them
    headers: tuple[tuple[str, str], ...]
    degraded: bool = False  # admitted without a hold: the store failed and the organization fails open
    # Admitted within this process's lease (budgets/admission/leases.py): `hold` is then the
    # request's share of it, which no store has seen.
    lease: Lease | None = None

    @property
    def ok(self) -> bool:
        return self.refusal is None


@dataclass(slots=True)
class Settlement:
    hold: Hold | None
    cost_units: int
    failed: bool
    buckets: tuple[tuple[str, int], ...]
    token_delta: int  # tokens charged minus tokens used: given back to the buckets
    at: datetime
    members: tuple[str, ...] = ()  # a lease's settlement: the requests admitted within it


@dataclass(frozen=True, slots=True)
class SettleResult:
    """What a settlement did: whether it still owned its hold, and the spend now booked per counter."""

    owned: bool
    spent: dict[str, int]
