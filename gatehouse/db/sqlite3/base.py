"""Django's SQLite backend, with the write lock taken in the process before SQLite's own.

SQLite lets one connection write at a time. A second writer that finds the file locked
does not queue: it sleeps in SQLite's busy handler (1, 2, 5, 10, 15, 20, 25 ms ...) and
tries again, so two threads of one gateway process that write together (a budget
admission, a settlement, a usage flush) cost the later one milliseconds of sleeping
each time — at 16 concurrent requests that was most of the +23 ms the budgets added.

Here every transaction (`BEGIN IMMEDIATE`, which is how Django opens one with
`transaction_mode` IMMEDIATE) first takes a lock shared by the process's connections to
the same file, released at COMMIT or ROLLBACK: writers of one process hand over to each
other at once. Other processes still meet SQLite's busy handler, as before. The lock is
waited for at most 2 s; after that SQLite decides, as it would have without it.
"""

from __future__ import annotations

import logging
import threading

from django.db.backends.sqlite3 import base

logger = logging.getLogger(__name__)

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def write_lock(name: str) -> threading.Lock:
    """The process-wide write lock of one database file."""
    with _locks_guard:
        found = _locks.get(name)
        if found is None:
            found = _locks[name] = threading.Lock()
        return found


class DatabaseWrapper(base.DatabaseWrapper):
    _held: threading.Lock | None = None

    def _lock_wait(self) -> float:
        # Transactions of the data plane last milliseconds; one that holds the lock longer
        # (a migration, a large rollup) makes the others fall back to SQLite's busy handler,
        # as they would without this lock.
        return min(float(self.settings_dict.get("OPTIONS", {}).get("timeout", 5)), 2.0)

    def _start_transaction_under_autocommit(self):
        if self.transaction_mode == "IMMEDIATE" and not self.is_in_memory_db() and self._held is None:
            lock = write_lock(str(self.settings_dict["NAME"]))
            if lock.acquire(timeout=self._lock_wait()):
                self._held = lock
            else:
                logger.warning(
                    "another transaction of this process held the SQLite write lock for over %.0f s; "
                    "leaving the wait to SQLite",
                    self._lock_wait(),
                )
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._release()
            raise

    def _release(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            held.release()

    def _commit(self):
        try:
            return super()._commit()
        finally:
            self._release()

    def _rollback(self):
        try:
            return super()._rollback()
        finally:
            self._release()

    def _close(self):
        try:
            return super()._close()
        finally:
            self._release()
