"""Budget leases: admitting in memory within a slice of a budget reserved in the store.

A request's admission normally places a hold in the store (a database transaction, or a
Redis script) and its settlement books the real cost there: two store writes per
request. While every budget of a request is far from its limit that is more care than
the limit needs. The process then reserves a *lease* — one ordinary hold of
`LEASE_MULTIPLE` times the request's worst case on the same counters, placed and
checked by the store exactly like a request's — and admits the next requests in memory
against it. Each takes its worst case from the lease's free room and gives back what it
did not spend when it settles.

A lease stops admitting when its room runs out, when it is `LEASE_AGE` seconds old or
when the budget definitions change; once its last request has settled, the lease is
settled in the store like a hold: its real cost is the sum of its requests' costs, and
its ledger row names them (`members`), so `reconcile_spend` follows every record to
the counter. The limit holds as before: the store never lets the leases and holds on
a counter exceed it, and a process only admits within what it holds. A process that
dies leaves its lease to expire like any hold.

Leases are only taken while a budget has room for `LEASE_HEADROOM` leases (counted on
the spend this process last saw booked on each counter); nearer its limit, and for a
counter this process has not seen booked yet, every request is admitted in the store
on its own, so the last requests a budget fits are decided exactly, across processes.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from budgets.admission.types import Hold, Settlement


@dataclass(slots=True, eq=False)
class Lease:
    hold: Hold  # the store's hold (request id `lease:<process>:<n>`)
    free: int  # units not given to a running request nor spent
    started: float  # monotonic
    spent: int = 0  # the real cost of the requests settled within it
    running: dict[str, int] = field(default_factory=dict)  # request id -> units it holds
    members: list[str] = field(default_factory=list)  # requests settled within it
    retired: bool = False  # admits nothing more; settled once its last request is
    closed: bool = False

    @property
    def key(self) -> tuple[str, ...]:
        return tuple(ref.ident for ref in self.hold.counters)


class Leases:
    """The leases of one `Budgets` owner. Thread-safe; every method is cheap (no I/O)."""

    def __init__(
        self,
        *,
        multiple: int,
        headroom: int,
        age: float,
        close: Callable[[Settlement], None],
        now: Callable[[], datetime],
    ) -> None:
        self.multiple = multiple
        self.headroom = headroom
        self.age = age
        self._close = close  # queues a lease's settlement
        self._now = now
        self._lock = threading.Lock()
        self._active: dict[tuple[str, ...], Lease] = {}
        self._booked: dict[str, int] = {}  # counter ident -> spend last seen booked on it
        self._refused: dict[tuple[str, ...], float] = {}  # key -> monotonic time until which not to ask
        self._prefix = f"lease:{uuid.uuid4().hex[:16]}:"
        self._serial = 0
        self.opened = 0  # leases placed so far (tests, the benchmark)

    @property
    def enabled(self) -> bool:
        return self.multiple > 0

    # -- admitting ---------------------------------------------------------------------------

    def take(self, hold: Hold) -> Lease | None:
        """Admit the request of `hold` within this process's lease on its counters, or None."""
        key = tuple(ref.ident for ref in hold.counters)
        closing = None
        with self._lock:
            lease = self._active.get(key)
            if lease is None:
                return None
            if lease.free >= hold.amount_units and time.monotonic() - lease.started < self.age:
                lease.free -= hold.amount_units
                lease.running[hold.request_id] = hold.amount_units
                return lease
            closing = self._retire(lease)
        if closing is not None:
            self._close(closing)
        return None

    def low(self, lease: Lease) -> bool:
        """A quarter of the lease is left: time to place the next one (before requests wait for it)."""
        return not lease.retired and lease.free < lease.hold.amount_units // 4

    def size(self, hold: Hold) -> int:
        """How large a lease to ask for to admit `hold` (0: admit it on its own)."""
        if not self.enabled:
            return 0
        key = tuple(ref.ident for ref in hold.counters)
        amount = self.multiple * max(hold.amount_units, 1)
        with self._lock:
            if self._refused.get(key, 0.0) > time.monotonic():
                return 0
            for ref in hold.counters:
                booked = self._booked.get(ref.ident)
                if booked is None or ref.budget.limit_units - booked < self.headroom * amount:
                    return 0
        return amount

    def placed(self, hold: Hold) -> Lease:
        """The store accepted a lease: admit within it from now on."""
        lease = Lease(hold=hold, free=hold.amount_units, started=time.monotonic())
        closing = None
        with self._lock:
            previous = self._active.get(lease.key)
            if previous is not None:
                closing = self._retire(previous)
            self._active[lease.key] = lease
            self.opened += 1
        if closing is not None:
            self._close(closing)
        return lease

    def refused(self, hold: Hold, *, for_seconds: float = 5.0) -> None:
        """The store had no room for a lease: admit on their own for a while."""
        with self._lock:
            self._refused[tuple(ref.ident for ref in hold.counters)] = time.monotonic() + for_seconds

    def lease_hold(self, hold: Hold, amount: int, *, ttl: float) -> Hold:
        """The hold a lease for `hold`'s counters places in the store."""
        with self._lock:
            self._serial += 1
            request_id = f"{self._prefix}{self._serial}"
        now = self._now()
        return Hold(
            request_id=request_id,
            organization_id=hold.organization_id,
            counters=hold.counters,
            amount_units=amount,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl),
        )

    def more(self, lease: Lease, request_id: str, extra: int) -> bool:
        """Raise a running request's share of its lease by `extra`, when the lease has room."""
        with self._lock:
            if lease.closed or request_id not in lease.running or lease.free < extra:
                return False
            lease.free -= extra
            lease.running[request_id] += extra
            return True

    def grown(self, lease: Lease, request_id: str, extra: int) -> None:
        """The store raised the lease's hold by `extra` for one running request."""
        with self._lock:
            if request_id in lease.running:
                lease.running[request_id] += extra

    # -- settling ----------------------------------------------------------------------------

    def settled(self, lease: Lease, request_id: str, *, cost_units: int) -> None:
        """A request admitted within `lease` ended, costing `cost_units`."""
        closing = None
        with self._lock:
            share = lease.running.pop(request_id, None)
            if share is None:
                return  # settled already
            lease.spent += cost_units
            lease.free += share - cost_units
            lease.members.append(request_id)
            if lease.retired and not lease.running:
                closing = self._closing(lease)
        if closing is not None:
            self._close(closing)

    def cancel(self, lease: Lease, request_id: str) -> None:
        """A request admitted within `lease` was refused after all (a rate limit): nothing spent."""
        with self._lock:
            share = lease.running.pop(request_id, None)
            if share is not None:
                lease.free += share
                closing = self._closing(lease) if lease.retired and not lease.running else None
            else:
                closing = None
        if closing is not None:
            self._close(closing)

    def retire_all(self, *, older_than: float | None = None) -> None:
        """Stop admitting within leases (all, or those older than `older_than` seconds): the
        definitions changed, the process stops, or a tick books what leases have spent."""
        now = time.monotonic()
        closing = []
        with self._lock:
            for lease in list(self._active.values()):
                if older_than is None or now - lease.started >= older_than:
                    found = self._retire(lease)
                    if found is not None:
                        closing.append(found)
        for item in closing:
            self._close(item)

    def booked(self, ident: str, spent: int) -> None:
        """The store booked spend on a counter and says it now stands at `spent`."""
        with self._lock:
            self._booked[ident] = spent
            if len(self._booked) > 100_000:
                self._booked.clear()

    def clear(self) -> None:
        with self._lock:
            self._active.clear()
            self._booked.clear()
            self._refused.clear()

    # -- inside the lock ---------------------------------------------------------------------

    def _retire(self, lease: Lease) -> Settlement | None:
        lease.retired = True
        if self._active.get(lease.key) is lease:
            del self._active[lease.key]
        return self._closing(lease) if not lease.running else None

    def _closing(self, lease: Lease) -> Settlement | None:
        if lease.closed:
            return None
        lease.closed = True
        return Settlement(
            hold=lease.hold,
            cost_units=lease.spent,
            failed=not lease.spent,
            buckets=(),
            token_delta=0,
            at=self._now(),
            members=tuple(lease.members),
        )
