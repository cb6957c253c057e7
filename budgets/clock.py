"""The budgets app's one source of "now", so tests can stop and move time.

Everything that decides by wall-clock time (periods shown in the console, hold
expiry, alerts) asks `clock.now()`. The gateway passes each request's own start
time to the admission, so a request and its usage record always fall in the same
period.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta


class Clock:
    def __init__(self) -> None:
        self._frozen: datetime | None = None

    def now(self) -> datetime:
        return self._frozen if self._frozen is not None else datetime.now(UTC)

    def timestamp(self) -> float:
        return self.now().timestamp()

    @contextmanager
    def frozen(self, at: datetime) -> Iterator[Clock]:
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


clock = Clock()
