"""The change feed: how every gateway process learns that cached config is stale.

A change is a `ChangeEvent` row written in the same transaction as the change it
announces, so a committed revocation always has its row. Rows get their ids from
a sequence when they are inserted, but transactions commit in any order: a reader
can see id 11 while id 10 is still uncommitted. A cursor that simply moves to 11
would skip 10 for good. `ChangeFeed` therefore remembers every id below its
cursor that it has not seen yet (a gap) and asks for those ids again on each poll
until they appear or can no longer appear: the gap is older than the horizon and,
on PostgreSQL, no transaction that was open when the gap was first noticed is
still open. Each change is returned once per feed (per process).

With Redis configured, each change is also published on a channel after commit;
`ChangeFeed.listen` applies what arrives there at once, de-duplicated with the
poll, which stays the source of truth (a lost message is picked up by the next
poll).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from console.models import ChangeEvent

logger = logging.getLogger(__name__)

# A change with this topic means "everything may be stale": drop every cache.
RESYNC = "*"


@dataclass(frozen=True, slots=True)
class Change:
    id: int
    topic: str
    ref: str


@dataclass(frozen=True, slots=True)
class ChangeFeedSettings:
    poll_interval: float = 0.25
    # Longest time a transaction may stay open between writing its change and committing.
    gap_horizon: float = 300.0
    batch: int = 1000
    max_gaps: int = 10_000
    retention: float = 86_400.0
    prune_batch: int = 5000
    channel: str = "gatehouse:changes"
    redis_url: str = ""

    @classmethod
    def from_settings(cls) -> ChangeFeedSettings:
        conf = settings.GATEHOUSE
        return cls(
            poll_interval=conf["CHANGE_POLL_INTERVAL"],
            gap_horizon=conf["CHANGE_FEED_GAP_HORIZON"],
            batch=conf["CHANGE_FEED_BATCH"],
            max_gaps=conf["CHANGE_FEED_MAX_GAPS"],
            retention=conf["CHANGE_FEED_RETENTION"],
            prune_batch=conf["CHANGE_FEED_PRUNE_BATCH"],
            channel=conf["CHANGE_FEED_CHANNEL"],
            redis_url=settings.REDIS_URL,
        )


def change_channel(base: str) -> str:
    """The Redis channel of this database's feed (two databases on one Redis never mix)."""
    return f"{base}:{connection.settings_dict['NAME']}"


def change_record(*, topic: str, ref: str = "", redis_url: str = "", channel: str = "") -> ChangeEvent:
    """Write a change in the current transaction; announce it on Redis after commit."""
    event = ChangeEvent.objects.create(topic=topic, ref=ref)
    if redis_url:
        message = json.dumps({"id": event.id, "topic": topic, "ref": ref})
        name = change_channel(channel)
        transaction.on_commit(lambda: _announce(redis_url, name, message))
    return event


def _announce(redis_url: str, channel: str, message: str) -> None:
    # Best effort: the polled feed delivers the change anyway, a little later.
    import redis

    try:
        client = redis.Redis.from_url(redis_url, socket_timeout=1.0, socket_connect_timeout=1.0)
        try:
            client.publish(channel, message)
        finally:
            client.close()
    except redis.RedisError:
        logger.warning("could not announce a change on Redis; the feed poll delivers it", exc_info=True)


def changes_prune(*, older_than: timedelta, batch: int = 5000) -> int:
    """Delete changes older than `older_than`, `batch` rows per statement. Returns the count.

    The newest row always stays: it is where a starting reader's cursor begins, so
    the ids consumed before it are never mistaken for transactions still open."""
    cutoff = timezone.now() - older_than
    newest = ChangeEvent.objects.aggregate(top=Max("id"))["top"]
    if newest is None:
        return 0
    deleted = 0
    while True:
        old = ChangeEvent.objects.filter(created_at__lt=cutoff, id__lt=newest).order_by("id")
        ids = list(old.values_list("id", flat=True)[:batch])
        if not ids:
            return deleted
        deleted += ChangeEvent.objects.filter(id__in=ids).delete()[0]
        if len(ids) < batch:
            return deleted


class ChangeFeed:
    """One process's reader of the change feed; owned by the gateway's composition root.

    `head()` and `poll()` touch the database and run in a worker thread; `listen()`
    is a coroutine the root runs as a task when Redis is configured. State is
    guarded by a lock, so the poll thread and the listener can deliver concurrently
    and still every change comes out exactly once.
    """

    def __init__(self, config: ChangeFeedSettings, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._clock = clock
        self._lock = threading.Lock()
        self.cursor = 0
        # id -> when it was first noticed missing (clock seconds)
        self.gaps: dict[int, float] = {}

    # -- reading -----------------------------------------------------------------------

    def head(self) -> int:
        """Start reading from now. Ids below the newest row that are missing and recent
        may still commit: they start out as gaps."""
        newest = ChangeEvent.objects.aggregate(top=Max("id"))["top"] or 0
        since = timezone.now() - timedelta(seconds=self.config.gap_horizon)
        floor = (
            ChangeEvent.objects.filter(created_at__lt=since, id__lte=newest)
            .order_by("-id")
            .values_list("id", flat=True)
            .first()
        )
        low = max(floor or 0, newest - self.config.max_gaps)
        present = set(ChangeEvent.objects.filter(id__gt=low, id__lte=newest).values_list("id", flat=True))
        now = self._clock()
        with self._lock:
            self.cursor = newest
            self.gaps = {i: now for i in range(low + 1, newest + 1) if i not in present}
        return newest

    def poll(self) -> list[Change]:
        """The changes not returned before, in id order."""
        with self._lock:
            cursor, gaps = self.cursor, list(self.gaps)
        newer = ChangeEvent.objects.filter(id__gt=cursor).order_by("id")
        rows = list(newer.values_list("id", "topic", "ref")[: self.config.batch])
        for start in range(0, len(gaps), 500):
            rows += ChangeEvent.objects.filter(id__in=gaps[start : start + 500]).values_list("id", "topic", "ref")
        fresh = self.accept(Change(*row) for row in rows)
        fresh += self._expire_gaps()
        return fresh

    def accept(self, changes: Iterable[Change]) -> list[Change]:
        """Record changes read (from the poll or from Redis); returns those not seen before."""
        fresh: list[Change] = []
        overflow = False
        with self._lock:
            now = self._clock()
            for change in sorted(changes, key=lambda c: c.id):
                if change.id > self.cursor:
                    for missing in range(max(self.cursor + 1, change.id - self.config.max_gaps), change.id):
                        self.gaps[missing] = now
                    overflow = overflow or change.id - self.cursor > self.config.max_gaps
                    self.cursor = change.id
                elif self.gaps.pop(change.id, None) is None:
                    continue  # seen already
                fresh.append(change)
            if len(self.gaps) > self.config.max_gaps:
                for stale in sorted(self.gaps)[: len(self.gaps) - self.config.max_gaps]:
                    del self.gaps[stale]
                overflow = True
        if overflow:
            # Some ids were given up on unchecked: whatever they said, treat everything as stale.
            logger.warning("the change feed tracked more than %s gaps; resynchronizing", self.config.max_gaps)
            fresh.append(Change(0, RESYNC, ""))
        return fresh

    def _expire_gaps(self) -> list[Change]:
        with self._lock:
            now = self._clock()
            due = [i for i, seen in self.gaps.items() if now - seen >= self.config.gap_horizon]
            # The transaction holding a missing id began before the gap was noticed; any
            # transaction older than the youngest due gap might hold one of them.
            youngest = min((now - self.gaps[i] for i in due), default=0.0)
        if not due or self._open_transaction_older_than(youngest):
            return []
        # One last look: a gap filled after this poll's read would otherwise be lost.
        rows = ChangeEvent.objects.filter(id__in=due[:1000]).values_list("id", "topic", "ref")
        fresh = self.accept(Change(*row) for row in rows)
        with self._lock:
            for i in due[:1000]:
                self.gaps.pop(i, None)
        return fresh

    @staticmethod
    def _open_transaction_older_than(seconds: float) -> bool:
        """On PostgreSQL: is any other transaction that has written something open for
        longer than `seconds`? Its change may still commit, so its gap stays."""
        if connection.vendor != "postgresql":
            return False  # SQLite serializes writers: ids commit in order there.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND backend_xid IS NOT NULL AND xact_start < now() - make_interval(secs => %s) LIMIT 1",
                [seconds],
            )
            return cursor.fetchone() is not None

    # -- Redis ---------------------------------------------------------------------------

    async def listen(self, apply: Callable[[list[Change]], Awaitable[None]], *, ready: asyncio.Event | None = None):
        """Apply changes announced on Redis as they arrive (run as a task; cancel to stop).

        Reconnects after a failure; while disconnected the poll keeps delivering."""
        import redis.asyncio as aioredis

        if not self.config.redis_url:
            raise RuntimeError("the change feed has no REDIS_URL to listen on")
        channel = await asyncio.to_thread(change_channel, self.config.channel)
        failing = False
        while True:
            client = aioredis.from_url(self.config.redis_url)
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(channel)
                    if ready is not None:
                        ready.set()
                    if failing:
                        logger.info("change feed listener reconnected")
                        failing = False
                    async for message in pubsub.listen():
                        if message.get("type") != "message":
                            continue
                        change = _decode(message.get("data"))
                        if change is None:
                            continue
                        fresh = self.accept([change])
                        if fresh:
                            await apply(fresh)
            except asyncio.CancelledError:
                raise
            except Exception:
                if not failing:
                    logger.warning("change feed listener lost Redis; polling only until it is back", exc_info=True)
                    failing = True
                await asyncio.sleep(1.0)
            finally:
                await client.aclose()


def _decode(raw: bytes | str | None) -> Change | None:
    try:
        data = json.loads(raw)
        return Change(int(data["id"]), str(data["topic"]), str(data.get("ref", "")))
    except (TypeError, ValueError, KeyError):
        logger.warning("ignoring a malformed change announcement: %r", raw)
        return None
