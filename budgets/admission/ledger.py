"""The hold ledger and counter mirror when the live counters are in Redis.

Admissions and settlements append to an in-memory buffer (a dict append on the
hot path); a background tick writes it with a handful of bulk statements. The
touched counters are mirrored from Redis into `BudgetCounter` rows on the same
tick, so the console, the API and `reconcile_spend` read them from the database.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.db import close_old_connections, transaction
from django.db.models import Q

from budgets.admission.db import ident_parts
from budgets.admission.types import CounterRef, Hold
from budgets.models import BudgetCounter, BudgetHold, HoldStatus

logger = logging.getLogger(__name__)

FINAL = (HoldStatus.SETTLED, HoldStatus.RELEASED, HoldStatus.EXPIRED)


@dataclass(slots=True)
class LedgerEntry:
    request_id: str
    organization_id: int | None = None
    counters: list[str] | None = None
    amount_units: int | None = None
    created_at: datetime | None = None
    expires_at: datetime | None = None
    status: str | None = None
    actual_units: int | None = None
    settled_at: datetime | None = None
    late: bool = False
    members: list[str] | None = None

    @property
    def complete(self) -> bool:
        return self.created_at is not None

    def merge(self, other: LedgerEntry) -> None:
        for name in (
            "organization_id",
            "counters",
            "amount_units",
            "created_at",
            "expires_at",
            "actual_units",
            "settled_at",
            "members",
        ):
            value = getattr(other, name)
            if value is not None:
                setattr(self, name, value)
        if other.status is not None and not (self.status == HoldStatus.EXPIRED and other.late):
            self.status = other.status
        self.late = self.late or other.late


class LedgerBuffer:
    def __init__(self) -> None:
        self._pending: dict[str, LedgerEntry] = {}
        self._lock = threading.Lock()
        self._touched: dict[str, CounterRef | None] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def _add(self, entry: LedgerEntry) -> None:
        with self._lock:
            current = self._pending.get(entry.request_id)
            if current is None:
                self._pending[entry.request_id] = entry
            else:
                current.merge(entry)

    def held(self, hold: Hold) -> None:
        self._add(
            LedgerEntry(
                request_id=hold.request_id,
                organization_id=hold.organization_id,
                counters=[ref.ident for ref in hold.counters],
                amount_units=hold.amount_units,
                created_at=hold.created_at,
                expires_at=hold.expires_at,
                status=HoldStatus.HELD,
            )
        )
        self.touch(hold.counters)

    def settled(
        self, hold: Hold, *, cost_units: int, failed: bool, owned: bool, at: datetime, members: tuple[str, ...] = ()
    ) -> None:
        status = HoldStatus.RELEASED if failed and not cost_units else HoldStatus.SETTLED
        self._add(
            LedgerEntry(
                request_id=hold.request_id,
                status=status if owned else None,
                actual_units=cost_units,
                settled_at=at,
                late=not owned,
                members=list(members) or None,
            )
        )
        self.touch(hold.counters)

    def raised(self, request_id: str, *, amount_units: int) -> None:
        """The hold was raised (`Budgets.reserve_more`): its amount is now `amount_units`."""
        self._add(LedgerEntry(request_id=request_id, amount_units=amount_units))

    def renewed(self, request_id: str, *, expires_at: datetime) -> None:
        self._add(LedgerEntry(request_id=request_id, expires_at=expires_at))

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()
            self._touched.clear()

    def expired(self, row: dict, *, at: datetime) -> None:
        self._add(LedgerEntry(**row, status=HoldStatus.EXPIRED, settled_at=at))

    def touch(self, refs) -> None:
        with self._lock:
            for ref in refs:
                self._touched[ref.ident] = ref

    def touch_idents(self, idents) -> None:
        """Counters changed without a reference at hand (expired holds): mirrored all the same."""
        with self._lock:
            for ident in idents:
                self._touched.setdefault(ident, None)

    def retouch(self, touched: dict[str, CounterRef | None]) -> None:
        with self._lock:
            for ident, ref in touched.items():
                if ref is not None or ident not in self._touched:
                    self._touched[ident] = ref

    def take_touched(self) -> dict[str, CounterRef | None]:
        with self._lock:
            touched, self._touched = self._touched, {}
        return touched

    def flush(self) -> int:
        """Write pending entries: new rows in bulk, updates of rows written earlier one by one."""
        with self._lock:
            batch, self._pending = self._pending, {}
        if not batch:
            return 0
        try:
            close_old_connections()
            with transaction.atomic():
                existing = {
                    row.request_id: row for row in BudgetHold.objects.filter(request_id__in=list(batch)).order_by()
                }
                create = []
                for request_id, entry in batch.items():
                    row = existing.get(request_id)
                    if row is None and entry.complete:
                        create.append(
                            BudgetHold(
                                request_id=request_id,
                                organization_id=entry.organization_id or 0,
                                counters=entry.counters or [],
                                amount_units=entry.amount_units or 0,
                                created_at=entry.created_at,
                                expires_at=entry.expires_at or entry.created_at,
                                status=entry.status or HoldStatus.HELD,
                                actual_units=entry.actual_units,
                                settled_at=entry.settled_at,
                                late=entry.late,
                                members=entry.members or [],
                            )
                        )
                    elif row is not None:
                        _row_update(row, entry)
                    else:
                        # A settlement whose admission entry is not written yet: keep it for the next tick.
                        self._add(entry)
                BudgetHold.objects.bulk_create(create, batch_size=500, ignore_conflicts=True)
        except Exception:
            with self._lock:
                for request_id, entry in batch.items():
                    current = self._pending.get(request_id)
                    if current is not None:
                        entry.merge(current)
                    self._pending[request_id] = entry
            logger.exception("hold ledger write failed; %d entries kept for the next attempt", len(batch))
            raise
        return len(batch)


def _row_update(row: BudgetHold, entry: LedgerEntry) -> None:
    fields = {}
    if entry.status is not None and entry.status != row.status and row.status not in FINAL:
        fields["status"] = entry.status
    if entry.actual_units is not None and entry.actual_units != row.actual_units:
        fields["actual_units"] = entry.actual_units
    if entry.settled_at is not None and row.settled_at is None:
        fields["settled_at"] = entry.settled_at
    if entry.late and not row.late:
        fields["late"] = True
    if entry.members and entry.members != row.members:
        fields["members"] = entry.members
    if row.status == HoldStatus.HELD and entry.amount_units is not None and entry.amount_units != row.amount_units:
        fields["amount_units"] = entry.amount_units
    if row.status == HoldStatus.HELD and entry.expires_at is not None and entry.expires_at != row.expires_at:
        fields["expires_at"] = entry.expires_at
    if fields:
        BudgetHold.objects.filter(pk=row.pk).update(**fields)


def mirror_write(values: dict[str, tuple[int, int]], refs: dict[str, CounterRef | None]) -> int:
    """Copy live counter values into their database rows (created when missing)."""
    if not values:
        return 0
    close_old_connections()
    rows = []
    for ident, (spent, held) in values.items():
        budget_id, start = ident_parts(ident)
        ref = refs.get(ident)
        rows.append(
            BudgetCounter(
                budget_id=budget_id,
                period_start=start,
                period_end=ref.end if ref is not None else None,
                limit_units=ref.budget.limit_units if ref is not None else 0,
                spent_units=spent,
                held_units=held,
            )
        )
    with transaction.atomic():
        BudgetCounter.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["budget", "period_start"],
            update_fields=["spent_units", "held_units"],
            batch_size=500,
        )
    return len(rows)


def restore_plan(budgets, *, at: datetime) -> tuple[list[tuple[str, int, int, int]], list[dict]]:
    """What Redis should hold, from the database: for each current-period counter (ident, spent,
    held, expire at) and every open hold. Spent is the larger of the mirrored value and the sum
    of the ledger's settled costs; held is the sum of the open holds (which are put back too, so
    their settlement still finds them)."""
    from budgets.admission.redis_store import RETENTION
    from budgets.periods import period_bounds

    close_old_connections()
    wanted: dict[str, tuple[int, datetime, datetime | None]] = {}
    for budget in budgets:
        start, end = period_bounds(budget.period, at, budget.zone)
        wanted[f"{budget.id}:{int(start.timestamp())}"] = (budget.organization_id, start, end)
    spent: dict[str, int] = defaultdict(int)
    held: dict[str, int] = defaultdict(int)
    mirrored: dict[str, int] = {}
    query = Q(pk__in=[])
    for ident, (_, start, _) in wanted.items():
        query |= Q(budget_id=int(ident.split(":")[0]), period_start=start)
    for budget_id, start, value in BudgetCounter.objects.filter(query).values_list(
        "budget_id", "period_start", "spent_units"
    ):
        mirrored[f"{budget_id}:{int(start.timestamp())}"] = value
    earliest: dict[int, datetime] = {}
    for organization_id, start, _ in wanted.values():
        earliest[organization_id] = min(start, earliest.get(organization_id, start))
    holds: list[dict] = []
    for organization_id, since in earliest.items():
        rows = BudgetHold.objects.filter(organization_id=organization_id, created_at__gte=since).values_list(
            "request_id", "counters", "amount_units", "actual_units", "status", "created_at", "expires_at"
        )
        for request_id, counters, amount, actual, status, created_at, expires_at in rows.iterator():
            mine = [ident for ident in counters if ident in wanted]
            if not mine:
                continue
            if actual is not None:
                for ident in mine:
                    spent[ident] += actual
            if status == HoldStatus.HELD:
                for ident in counters:
                    held[ident] += amount
                holds.append(
                    {
                        "request_id": request_id,
                        "organization_id": organization_id,
                        "counters": list(counters),
                        "amount_units": amount,
                        "created_at": created_at,
                        "expires_at": expires_at,
                    }
                )
    counters = []
    for ident in sorted(set(wanted) | set(held)):
        end = wanted[ident][2] if ident in wanted else None
        expire_at = int(end.timestamp()) + RETENTION if end is not None else 0
        counters.append((ident, max(spent.get(ident, 0), mirrored.get(ident, 0)), held.get(ident, 0), expire_at))
    return counters, holds
