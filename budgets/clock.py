"""Sources of "now" for budgets, injected into the `Budgets` owner and the console's services.

`SystemClock` reads the wall clock; `FrozenClock` stands still until moved (tests).
The gateway passes each request's own start time to the admission, so a request and
its usage record always fall in the same period.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """The wall clock, in UTC. Stateless."""

    __slots__ = ()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def timestamp(self) -> float:
        return self.now().timestamp()


class FrozenClock:
    """A clock stopped at `at` (aware); `advance` moves it."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("freeze the clock at an aware datetime")
        self._at = at

    def now(self) -> datetime:
        return self._at

    def timestamp(self) -> float:
        return self._at.timestamp()

    def advance(self, delta: timedelta) -> datetime:
        self._at += delta
        return self._at

    def set(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("freeze the clock at an aware datetime")
        self._at = at


class SettableClock:
    """The wall clock until frozen: `frozen(at)` stops it for a block, `advance` moves it
    (routing state and tests, which share one instance with the code under test)."""

    def __init__(self) -> None:
        self._frozen: datetime | None = None

    def now(self) -> datetime:
        return self._frozen if self._frozen is not None else datetime.now(UTC)

    def timestamp(self) -> float:
        return self.now().timestamp()

    @contextmanager
    def frozen(self, at: datetime) -> Iterator[SettableClock]:
        """Stop time at `at` (aware) until the block ends; `advance` moves it."""
        if at.tzinfo is None:
            raise ValueError("freeze the clock at an aware datetime")
        previous, self._frozen = self._frozen, at
        try:
            yield self
        finally:
            self._frozen = previous

    def advance(self, delta: timedelta) -> datetime:
        if self._frozen is None:
            raise RuntimeError("only a frozen clock can be moved")
        self._frozen += delta
        return self._frozen


SYSTEM_CLOCK = SystemClock()  # stateless: shared safely
