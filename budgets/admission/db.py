"""Budget counters in the database: the embedded default (SQLite) and PostgreSQL without Redis.

An admission is one short transaction: a conditional `UPDATE ... SET held = held +
amount WHERE spent + held + amount <= limit` per counter, in a fixed order (so two
transactions never wait on each other in a cycle), then the hold's ledger row. Any
counter without room rolls the whole transaction back: a request reserves on every
scope or on none. SQLite runs it as an IMMEDIATE transaction (one writer at a time
across processes); PostgreSQL's row locks re-check the condition after waiting.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from datetime import UTC, datetime

from django.db import close_old_connections, connection, transaction

from budgets.admission.types import CounterRef, Hold, Settlement, SettleResult
from budgets.models import BudgetCounter, BudgetHold, HoldStatus

logger = logging.getLogger(__name__)


class _Refused(Exception):
    def __init__(self, ref: CounterRef) -> None:
        self.ref = ref


def ident_parts(ident: str) -> tuple[int, datetime]:
    budget_id, start = ident.split(":")
    return int(budget_id), datetime.fromtimestamp(int(start), UTC)


class KnownCounters:
    """Counter rows this process knows exist, so the admission skips the insert."""

    def __init__(self) -> None:
        self._known: set[str] = set()
        self._lock = threading.Lock()

    def missing(self, refs: tuple[CounterRef, ...]) -> list[CounterRef]:
        return [ref for ref in refs if ref.ident not in self._known]

    def add(self, refs: list[CounterRef]) -> None:
        with self._lock:
            self._known.update(ref.ident for ref in refs)
            if len(self._known) > 200_000:
                self._known.clear()

    def forget(self, ref: CounterRef) -> None:
        self._known.discard(ref.ident)

    def clear(self) -> None:
        self._known.clear()


known_counters = KnownCounters()


def counters_ensure(refs: list[CounterRef]) -> None:
    if not refs:
        return
    BudgetCounter.objects.bulk_create(
        [
            BudgetCounter(
                budget_id=ref.budget.id, period_start=ref.start, period_end=ref.end, limit_units=ref.budget.limit_units
            )
            for ref in refs
        ],
        ignore_conflicts=True,
    )
    known_counters.add(refs)


def _counter(ref: CounterRef):
    return BudgetCounter.objects.filter(budget_id=ref.budget.id, period_start=ref.start)


class _Sql:
    """Statements of the hot path, written once per connection vendor: raw SQL costs a
    fraction of building the same query through the ORM on every request."""

    # Table names come from the models and are quoted; every value is a bound parameter.
    def __init__(self) -> None:
        quote = connection.ops.quote_name
        counters, holds = quote(BudgetCounter._meta.db_table), quote(BudgetHold._meta.db_table)
        where = "budget_id = %s AND period_start = %s"
        self.reserve_hard = (
            f"UPDATE {counters} SET held_units = held_units + %s WHERE {where} AND spent_units + held_units <= %s"  # noqa: S608
        )
        self.reserve_soft = f"UPDATE {counters} SET held_units = held_units + %s WHERE {where}"  # noqa: S608
        self.book = f"UPDATE {counters} SET held_units = held_units - %s, spent_units = spent_units + %s WHERE {where}"  # noqa: S608
        self.returning = connection.features.can_return_columns_from_insert
        if self.returning:
            self.book += " RETURNING spent_units"
        self.spent = f"SELECT spent_units FROM {counters} WHERE {where}"  # noqa: S608
        self.hold_insert = (
            f"INSERT INTO {holds} (request_id, organization_id, counters, amount_units, status, late, created_at, "  # noqa: S608
            "expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        )
        self.hold_close = (
            f"UPDATE {holds} SET status = %s, actual_units = %s, settled_at = %s WHERE request_id = %s AND status = %s"  # noqa: S608
        )
        self.hold_late = f"UPDATE {holds} SET actual_units = %s, settled_at = %s, late = %s WHERE request_id = %s"  # noqa: S608


_statements: dict[str, _Sql] = {}


def _sql() -> _Sql:
    vendor = connection.vendor
    found = _statements.get(vendor)
    if found is None:
        found = _statements[vendor] = _Sql()
    return found


def _when(moment: datetime):
    return connection.ops.adapt_datetimefield_value(moment)


def connection_ready() -> None:
    """Keep this thread's connection between admissions (opening one per request would cost
    more than the admission itself); drop it only when it failed."""
    if connection.errors_occurred and not connection.is_usable():
        connection.close()


def db_admit(*, hold: Hold) -> tuple[CounterRef, int] | None:
    """Reserve `hold.amount_units` on every counter of the hold, or on none.

    Returns None when admitted, else the first counter without room and what it has
    in use (spent + held).
    """
    connection_ready()
    counters_ensure(known_counters.missing(hold.counters))
    sql = _sql()
    ordered = sorted(hold.counters, key=lambda ref: ref.ident)
    counters_json = BudgetHold._meta.get_field("counters").get_db_prep_save(
        [ref.ident for ref in hold.counters], connection
    )
    for attempt in range(2):
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                for ref in ordered:
                    if ref.budget.hard:
                        room = ref.budget.limit_units - hold.amount_units
                        cursor.execute(sql.reserve_hard, [hold.amount_units, ref.budget.id, _when(ref.start), room])
                    else:
                        cursor.execute(sql.reserve_soft, [hold.amount_units, ref.budget.id, _when(ref.start)])
                    if cursor.rowcount != 1:
                        raise _Refused(ref)
                cursor.execute(
                    sql.hold_insert,
                    [
                        hold.request_id,
                        hold.organization_id,
                        counters_json,
                        hold.amount_units,
                        HoldStatus.HELD.value,
                        False,
                        _when(hold.created_at),
                        _when(hold.expires_at),
                    ],
                )
            return None
        except _Refused as refused:
            row = _counter(refused.ref).values_list("spent_units", "held_units").first()
            if row is None and attempt == 0:
                # The row went away behind this process's back (a test database flush).
                known_counters.forget(refused.ref)
                counters_ensure([refused.ref])
                continue
            spent, held = row or (0, 0)
            return refused.ref, spent + held
    return None


def _apply_deltas(cursor, held: dict[str, int], spent: dict[str, int]) -> dict[str, int]:
    """Book counter changes in ident order; returns the spend now booked per counter."""
    sql = _sql()
    booked: dict[str, int] = {}
    for ident in sorted(set(held) | set(spent)):
        budget_id, start = ident_parts(ident)
        cursor.execute(sql.book, [held.get(ident, 0), spent.get(ident, 0), budget_id, _when(start)])
        if not sql.returning:
            cursor.execute(sql.spent, [budget_id, _when(start)])
        row = cursor.fetchone()
        if row is not None:
            booked[ident] = int(row[0])
    return booked


def db_settle_many(batch: list[Settlement]) -> list[SettleResult]:
    """Settle holds in one transaction: each hold is closed once, its counters booked."""
    connection_ready()
    sql = _sql()
    held: dict[str, int] = defaultdict(int)
    spent: dict[str, int] = defaultdict(int)
    owned: dict[str, bool] = {}
    with transaction.atomic(), connection.cursor() as cursor:
        for item in sorted((s for s in batch if s.hold is not None), key=lambda s: s.hold.request_id):
            hold = item.hold
            status = HoldStatus.RELEASED if item.failed and not item.cost_units else HoldStatus.SETTLED
            at = _when(item.at)
            cursor.execute(sql.hold_close, [status.value, item.cost_units, at, hold.request_id, HoldStatus.HELD.value])
            mine = cursor.rowcount == 1
            if not mine:
                # The hold expired first (and was released): the cost is still booked.
                cursor.execute(sql.hold_late, [item.cost_units, at, True, hold.request_id])
            owned[hold.request_id] = mine
            for ref in hold.counters:
                if mine:
                    held[ref.ident] += hold.amount_units
                spent[ref.ident] += item.cost_units
        booked = _apply_deltas(cursor, held, spent)
    return [
        SettleResult(
            owned=owned.get(item.hold.request_id, False),
            spent={ref.ident: booked.get(ref.ident, 0) for ref in item.hold.counters},
        )
        if item.hold is not None
        else SettleResult(owned=False, spent={})
        for item in batch
    ]


def db_reap(*, now: datetime, limit: int = 500) -> list[str]:
    """Release holds whose process never settled them; returns their request ids."""
    close_old_connections()
    due = list(
        BudgetHold.objects.filter(status=HoldStatus.HELD, expires_at__lt=now)
        .order_by("request_id")
        .values_list("request_id", "counters", "amount_units")[:limit]
    )
    if not due:
        return []
    released: list[str] = []
    held: dict[str, int] = defaultdict(int)
    with transaction.atomic():
        for request_id, counters, amount in due:
            if BudgetHold.objects.filter(request_id=request_id, status=HoldStatus.HELD).update(
                status=HoldStatus.EXPIRED, settled_at=now
            ):
                released.append(request_id)
                for ident in counters:
                    held[ident] += amount
        with connection.cursor() as cursor:
            _apply_deltas(cursor, held, {})
    if released:
        logger.warning("released %d expired budget holds", len(released))
    return released
