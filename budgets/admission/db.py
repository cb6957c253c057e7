"""Budget counters in the database: the embedded default (SQLite) and PostgreSQL without Redis.

An admission is one short transaction: a conditional `UPDATE ... SET held = held +
amount WHERE spent + held + amount <= limit` per counter, in a fixed order (so two
transactions never wait on each other in a cycle), then the hold's ledger row. Any
counter without room rolls the whole transaction back: a request reserves on every
scope or on none. SQLite runs it as an IMMEDIATE transaction (one writer at a time
across processes); PostgreSQL's row locks re-check the condition after waiting.

Group commit: admissions that arrive while a transaction runs are decided together
in the next one. On SQLite that is one BEGIN IMMEDIATE for several holds, each in
a savepoint of its own (a refused hold rolls back alone); on PostgreSQL each hold
keeps its own transaction (so row locks are always taken in one order).

Every function takes the database alias and works on that thread's connection:
they run in the executors the `Budgets` owner was given, never on the event loop.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from datetime import UTC, datetime

from django.db import connections, transaction

from budgets.admission.types import CounterRef, Hold, Settlement, SettleResult
from budgets.models import BudgetCounter, BudgetHold, HoldStatus

logger = logging.getLogger(__name__)


class _Refused(Exception):
    def __init__(self, ref: CounterRef | None) -> None:
        self.ref = ref


def ident_parts(ident: str) -> tuple[int, datetime]:
    budget_id, start = ident.split(":")
    return int(budget_id), datetime.fromtimestamp(int(start), UTC)


class KnownCounters:
    """Counter rows this owner knows exist, so the admission skips the insert."""

    def __init__(self) -> None:
        self._known: set[str] = set()
        self._lock = threading.Lock()

    def missing(self, refs) -> list[CounterRef]:
        return [ref for ref in refs if ref.ident not in self._known]

    def add(self, refs: list[CounterRef]) -> None:
        with self._lock:
            self._known.update(ref.ident for ref in refs)
            if len(self._known) > 200_000:
                self._known.clear()

    def forget(self, ref: CounterRef) -> None:
        with self._lock:
            self._known.discard(ref.ident)

    def clear(self) -> None:
        with self._lock:
            self._known.clear()


class _Sql:
    """Statements of the hot path, written once per connection vendor: raw SQL costs a
    fraction of building the same query through the ORM on every request."""

    # Table names come from the models and are quoted; every value is a bound parameter.
    def __init__(self, connection) -> None:
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
        self.used = f"SELECT spent_units + held_units FROM {counters} WHERE {where}"  # noqa: S608
        self.hold_insert = (
            f"INSERT INTO {holds} (request_id, organization_id, counters, amount_units, status, late, created_at, "  # noqa: S608
            "expires_at, members) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, '[]')"
        )
        self.hold_members = f"UPDATE {holds} SET members = %s WHERE request_id = %s"  # noqa: S608
        self.hold_amount = f"SELECT amount_units FROM {holds} WHERE request_id = %s AND status = %s"  # noqa: S608
        self.hold_close = (
            f"UPDATE {holds} SET status = %s, actual_units = %s, settled_at = %s WHERE request_id = %s AND status = %s"  # noqa: S608
        )
        self.hold_late = f"UPDATE {holds} SET actual_units = %s, settled_at = %s, late = %s WHERE request_id = %s"  # noqa: S608
        self.hold_raise = f"UPDATE {holds} SET amount_units = amount_units + %s WHERE request_id = %s AND status = %s"  # noqa: S608
        self.hold_renew = f"UPDATE {holds} SET expires_at = %s WHERE request_id = %s AND status = %s"  # noqa: S608


def connection_ready(connection) -> None:
    """Keep this thread's connection between admissions (opening one per request would cost
    more than the admission itself); drop it only when it failed, so the next job reconnects."""
    if connection.connection is not None and connection.errors_occurred and not connection.is_usable():
        connection.close()


class DatabaseCounters:
    """The database side of the budget counters, on one database alias."""

    def __init__(self, *, alias: str = "default") -> None:
        self.alias = alias
        self.known = KnownCounters()
        self._sql: dict[str, _Sql] = {}

    @property
    def connection(self):
        return connections[self.alias]

    def sql(self) -> _Sql:
        connection = self.connection
        found = self._sql.get(connection.vendor)
        if found is None:
            found = self._sql[connection.vendor] = _Sql(connection)
        return found

    def _when(self, moment: datetime):
        return self.connection.ops.adapt_datetimefield_value(moment)

    def ensure(self, refs: list[CounterRef]) -> None:
        if not refs:
            return
        BudgetCounter.objects.using(self.alias).bulk_create(
            [
                BudgetCounter(
                    budget_id=ref.budget.id,
                    period_start=ref.start,
                    period_end=ref.end,
                    limit_units=ref.budget.limit_units,
                )
                for ref in refs
            ],
            ignore_conflicts=True,
        )
        self.known.add(refs)

    def _reserve(self, cursor, hold: Hold) -> None:
        """Reserve on every counter of the hold (raises _Refused on the first without room)."""
        sql = self.sql()
        for ref in sorted(hold.counters, key=lambda ref: ref.ident):
            if ref.budget.hard:
                room = ref.budget.limit_units - hold.amount_units
                cursor.execute(sql.reserve_hard, [hold.amount_units, ref.budget.id, self._when(ref.start), room])
            else:
                cursor.execute(sql.reserve_soft, [hold.amount_units, ref.budget.id, self._when(ref.start)])
            if cursor.rowcount != 1:
                raise _Refused(ref)
        counters_json = BudgetHold._meta.get_field("counters").get_db_prep_save(
            [ref.ident for ref in hold.counters], self.connection
        )
        cursor.execute(
            sql.hold_insert,
            [
                hold.request_id,
                hold.organization_id,
                counters_json,
                hold.amount_units,
                HoldStatus.HELD.value,
                False,
                self._when(hold.created_at),
                self._when(hold.expires_at),
            ],
        )

    def _used(self, cursor, ref: CounterRef) -> int | None:
        cursor.execute(self.sql().used, [ref.budget.id, self._when(ref.start)])
        row = cursor.fetchone()
        return None if row is None else int(row[0])

    def admit_many(self, holds: list[Hold]) -> list[tuple[CounterRef, int] | None]:
        """Decide several holds: for each, None when reserved on every counter, else the first
        counter without room and what it has in use (spent + held). Database errors propagate."""
        connection = self.connection
        connection_ready(connection)
        missing: dict[str, CounterRef] = {}
        for hold in holds:
            for ref in self.known.missing(hold.counters):
                missing[ref.ident] = ref
        self.ensure(list(missing.values()))
        if connection.vendor == "sqlite" and len(holds) > 1:
            # One BEGIN IMMEDIATE for the batch; each hold in a savepoint of its own.
            with transaction.atomic(using=self.alias):
                return [self._decide(hold) for hold in holds]
        return [self._decide(hold) for hold in holds]

    def _decide(self, hold: Hold) -> tuple[CounterRef, int] | None:
        for attempt in range(2):
            try:
                with transaction.atomic(using=self.alias), self.connection.cursor() as cursor:
                    self._reserve(cursor, hold)
                return None
            except _Refused as refused:
                with self.connection.cursor() as cursor:
                    used = self._used(cursor, refused.ref)
                if used is None and attempt == 0:
                    # The row went away behind this owner's back (a test database flush).
                    self.known.forget(refused.ref)
                    self.ensure([refused.ref])
                    continue
                return refused.ref, used or 0
        return None

    def raise_hold(self, hold: Hold, extra: int) -> tuple[CounterRef | None, int] | None:
        """Raise an open hold by `extra` on each of its counters, or on none. None when raised;
        (counter, used) when a counter has no room; (None, 0) when the hold is no longer open."""
        connection = self.connection
        connection_ready(connection)
        sql = self.sql()
        try:
            with transaction.atomic(using=self.alias), connection.cursor() as cursor:
                cursor.execute(sql.hold_raise, [extra, hold.request_id, HoldStatus.HELD.value])
                if cursor.rowcount != 1:
                    raise _Refused(None)
                for ref in sorted(hold.counters, key=lambda ref: ref.ident):
                    if ref.budget.hard:
                        room = ref.budget.limit_units - extra
                        cursor.execute(sql.reserve_hard, [extra, ref.budget.id, self._when(ref.start), room])
                    else:
                        cursor.execute(sql.reserve_soft, [extra, ref.budget.id, self._when(ref.start)])
                    if cursor.rowcount != 1:
                        raise _Refused(ref)
        except _Refused as refused:
            if refused.ref is None:
                return None, 0
            with connection.cursor() as cursor:
                return refused.ref, self._used(cursor, refused.ref) or 0
        return None

    def renew(self, expiries: dict[str, datetime]) -> int:
        if not expiries:
            return 0
        connection = self.connection
        connection_ready(connection)
        sql = self.sql()
        done = 0
        with transaction.atomic(using=self.alias), connection.cursor() as cursor:
            for request_id, at in sorted(expiries.items()):
                cursor.execute(sql.hold_renew, [self._when(at), request_id, HoldStatus.HELD.value])
                done += cursor.rowcount
        return done

    def _apply_deltas(self, cursor, held: dict[str, int], spent: dict[str, int]) -> dict[str, int]:
        """Book counter changes in ident order; returns the spend now booked per counter."""
        sql = self.sql()
        booked: dict[str, int] = {}
        for ident in sorted(set(held) | set(spent)):
            budget_id, start = ident_parts(ident)
            cursor.execute(sql.book, [held.get(ident, 0), spent.get(ident, 0), budget_id, self._when(start)])
            if not sql.returning:
                cursor.execute(sql.spent, [budget_id, self._when(start)])
            row = cursor.fetchone()
            if row is not None:
                booked[ident] = int(row[0])
        return booked

    def settle_many(self, batch: list[Settlement]) -> list[SettleResult]:
        """Settle holds in one transaction: each hold is closed once, its counters booked with
        the amount its ledger row holds (raised holds included)."""
        connection = self.connection
        connection_ready(connection)
        sql = self.sql()
        held: dict[str, int] = defaultdict(int)
        spent: dict[str, int] = defaultdict(int)
        owned: dict[str, bool] = {}
        with transaction.atomic(using=self.alias), connection.cursor() as cursor:
            for item in sorted((s for s in batch if s.hold is not None), key=lambda s: s.hold.request_id):
                hold = item.hold
                status = HoldStatus.RELEASED if item.failed and not item.cost_units else HoldStatus.SETTLED
                at = self._when(item.at)
                cursor.execute(sql.hold_amount, [hold.request_id, HoldStatus.HELD.value])
                row = cursor.fetchone()
                amount = int(row[0]) if row is not None else hold.amount_units
                cursor.execute(
                    sql.hold_close, [status.value, item.cost_units, at, hold.request_id, HoldStatus.HELD.value]
                )
                mine = cursor.rowcount == 1
                if not mine:
                    # The hold expired first (and was released): the cost is still booked.
                    cursor.execute(sql.hold_late, [item.cost_units, at, True, hold.request_id])
                owned[hold.request_id] = mine
                if item.members:
                    members = BudgetHold._meta.get_field("members").get_db_prep_save(list(item.members), connection)
                    cursor.execute(sql.hold_members, [members, hold.request_id])
                for ref in hold.counters:
                    if mine:
                        held[ref.ident] += amount
                    spent[ref.ident] += item.cost_units
            booked = self._apply_deltas(cursor, held, spent)
        return [
            SettleResult(
                owned=owned.get(item.hold.request_id, False),
                spent={ref.ident: booked.get(ref.ident, 0) for ref in item.hold.counters},
            )
            if item.hold is not None
            else SettleResult(owned=False, spent={})
            for item in batch
        ]

    def reap(self, *, now: datetime, limit: int = 500) -> list[str]:
        """Release holds whose process never settled them; returns their request ids."""
        connection_ready(self.connection)
        holds = BudgetHold.objects.using(self.alias)
        due = list(
            holds.filter(status=HoldStatus.HELD, expires_at__lt=now)
            .order_by("request_id")
            .values_list("request_id", "counters", "amount_units")[:limit]
        )
        if not due:
            return []
        released: list[str] = []
        held: dict[str, int] = defaultdict(int)
        with transaction.atomic(using=self.alias):
            for request_id, counters, amount in due:
                if holds.filter(request_id=request_id, status=HoldStatus.HELD).update(
                    status=HoldStatus.EXPIRED, settled_at=now
                ):
                    released.append(request_id)
                    for ident in counters:
                        held[ident] += amount
            with self.connection.cursor() as cursor:
                self._apply_deltas(cursor, held, {})
        if released:
            logger.warning("released %d expired budget holds", len(released))
        return released
