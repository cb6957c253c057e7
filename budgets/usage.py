"""The usage sink: records buffered in memory, journaled on disk, written in batches.

The gateway owns one `UsageSink`. On the event loop, `begin`, `progress` and `add`
cost a deque append and one journal write; `flush` runs in a worker thread and
writes everything pending with one insert. A record the database refuses is set
aside as a dead letter without holding back the others (`budgets.records`); while
the database is unreachable the batch stays buffered, bounded by `buffer_max`.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from pathlib import Path

from django.conf import settings

from budgets.journal import DEFAULT_ROTATE_BYTES, ReplayReport, UsageJournal, journal_write_new, replay
from budgets.records import UsageEvent, event_dumps, usage_storable, usage_write
from gatehouse.db import connections_repair

__all__ = ["UsageEvent", "UsageSink", "usage_storable"]

logger = logging.getLogger(__name__)


class UsageSink:
    """The usage buffer and this process's usage journal, as one object.

    - `begin(event)` when a request is about to go upstream (the record skeleton);
    - `progress(request_id, output_tokens)` while a stream runs;
    - `add(event)` with the settled record (made storable here);
    - `flush()` from a worker thread, every `USAGE_FLUSH_INTERVAL`;
    - `flush_final()` at shutdown: never raises;
    - `replay()` at start: stores what dead processes left in the journal directory.

    Without a journal directory the journal calls do nothing and a crash loses
    what is buffered (at most one flush interval of records).
    """

    def __init__(
        self,
        journal_dir: Path | None = None,
        buffer_max: int | None = None,
        *,
        rotate_bytes: int = DEFAULT_ROTATE_BYTES,
    ) -> None:
        self._pending: deque[UsageEvent] = deque()
        self._flush_lock = threading.Lock()
        self._buffer_max = buffer_max
        self.journal = UsageJournal(journal_dir, rotate_bytes=rotate_bytes) if journal_dir is not None else None
        self.journal_dir = Path(journal_dir) if journal_dir is not None else None
        self.dropped = 0  # records dropped from memory by the buffer bound while the database was unreachable
        self._dropped_unrecovered = 0  # of which not yet written back from the journal
        self.dead_letters = 0
        self.unavailable = ""  # why the database is unreachable, while it is

    # -- the event loop's side

    def begin(self, event: UsageEvent) -> None:
        if self.journal is not None:
            self.journal.begin(event)

    def progress(self, request_id: str, output_tokens: int) -> None:
        if self.journal is not None:
            self.journal.progress(request_id, output_tokens)

    def add(self, event: UsageEvent) -> None:
        usage_storable(event)
        # Buffer first, journal second: a rotation between the two leaves the `done`
        # entry in the new file, which outlives this record's flush.
        self._pending.append(event)
        if self.journal is not None:
            self.journal.done(event)

    def __len__(self) -> int:
        return len(self._pending)

    # -- the worker thread's side

    def _take(self) -> list[UsageEvent]:
        batch = []
        pop = self._pending.popleft
        try:
            while True:
                batch.append(pop())
        except IndexError:
            return batch

    def _keep(self, events: list[UsageEvent]) -> None:
        self._pending.extendleft(reversed(events))
        bound = self._buffer_max if self._buffer_max is not None else settings.GATEHOUSE["USAGE_BUFFER_MAX"]
        overflow = len(self._pending) - bound
        if overflow > 0:
            for _ in range(overflow):
                self._pending.popleft()
            self.dropped += overflow
            self._dropped_unrecovered += overflow
            where = "they stay in the usage journal for replay" if self.journal is not None else "they are lost"
            logger.error("usage buffer full: %d oldest records dropped from memory; %s", overflow, where)

    def flush(self) -> int:
        """Write what is pending; returns how many records were written (dead letters excluded).

        Never raises for a bad record; while the database is unreachable the records
        stay buffered, and the outage is logged once when it starts and once when it ends.
        """
        with self._flush_lock:
            if self.journal is not None and not self.unavailable:
                # No new file during an outage: the current one holds what memory may drop.
                self.journal.rotate_if_due()
            batch = self._take()
            if not batch:
                self._release()
                return 0
            connections_repair()
            result = usage_write(batch)
            self.dead_letters += result.dead
            if result.kept:
                self._keep(result.kept)
                if result.unavailable != self.unavailable:
                    logger.error(
                        "usage records cannot be written (%s); %d kept for the next attempt",
                        result.unavailable,
                        len(result.kept),
                    )
                self.unavailable = result.unavailable
            else:
                if self.unavailable:
                    logger.info("usage records are written again")
                    self.unavailable = ""
                self._release()
            return result.written

    def _release(self) -> None:
        """Delete the journal files whose records are all stored.

        After the buffer bound dropped records, those are only in this process's
        journal: they are written back from it first.
        """
        if self.journal is None or self.unavailable:
            return
        if self._dropped_unrecovered:
            written, dead, unavailable = journal_write_new(self.journal.done_records())
            if unavailable:
                return
            logger.info(
                "usage records dropped from memory written back from the journal: %d new, %d dead letters",
                written,
                dead,
            )
            self.dead_letters += dead
            self._dropped_unrecovered = 0
        self.journal.release()

    def flush_final(self) -> int:
        """The shutdown flush: write what can be written, keep the rest in the journal; never raises."""
        written = 0
        try:
            written = self.flush()
        except Exception:  # the last chance to write must not take the shutdown down with it
            logger.exception("final usage flush failed")
        left = len(self._pending)
        if left:
            if self.journal is not None:
                logger.error("%d usage records not written at shutdown; the journal keeps them for replay", left)
            else:
                # No journal: the log is the only place these records can still be found.
                for event in self._take():
                    logger.error("usage record not written at shutdown: %s", event_dumps(event).decode())
        if self.journal is not None:
            try:
                self.journal.close(flushed=not left and not self._dropped_unrecovered)
            except OSError as exc:
                logger.error("usage journal not closed cleanly: %s", exc)
        return written

    def replay(self) -> int:
        """Store the records orphaned journal files hold; returns how many were new."""
        return self.replay_report().written

    def replay_report(self) -> ReplayReport:
        if self.journal_dir is None:
            return ReplayReport()
        try:
            report = replay(self.journal_dir)
        except OSError as exc:  # an unreadable directory must not keep the gateway from starting
            logger.error("usage journal replay failed in %s: %s", self.journal_dir, exc)
            return ReplayReport(errors=[str(exc)])
        self.dead_letters += report.dead_letters
        return report
