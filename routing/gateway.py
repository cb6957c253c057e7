"""The composition root of the data plane: one `Gateway` object per process.

Everything the `/v1` pipeline needs that lives longer than one request is owned
here and nowhere else — the pooled HTTP client, the thread pools that run
database work, the registry and routing snapshots, the key cache, the usage
sink, the budget engine and the routing state — so nothing of the data plane is
module-level state. The ASGI lifespan makes one and stops it (draining what is
buffered); management commands, Celery tasks and tests make their own.

Database work never shares a thread with other database work of a different
kind: key lookups and snapshot rebuilds run in `executors.db`, the change-feed
poll in `executors.poller`, usage writes in `executors.writer` (one thread:
batches are written in order), so a slow batch write can never delay a key lookup
or an admission. The writer and the poller run every fraction of a second and keep
their connection between jobs; the other pools give theirs back after each job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import httpx
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections, connections

from audit.facade import LedgerBuffer, ledger_write
from budgets.facade import SYSTEM_CLOCK, Budgets, SettableClock, Telemetry, UsageSink, budget_settings
from console.authlimit import auth_limiter_build
from console.changes import RESYNC, Change, ChangeFeed, ChangeFeedSettings
from console.keycache import KeyCache, KeyCacheSettings
from gatehouse.db import connections_repair
from guardrails.facade import Guard, review_enqueue
from providers.facade import CatalogSnapshot, catalog_build
from routing.engine.snapshot import RoutingSnapshot, routing_build
from routing.engine.state import RoutingState, routing_state_from_settings
from routing.upstream import upstream_client

logger = logging.getLogger(__name__)
T = TypeVar("T")
RENEW_EVERY_MAX = 30.0  # seconds between renewals of a running request's budget hold
RENEW_STEP = 0.1  # seconds between checks of whether the holds are due


@dataclass(frozen=True, slots=True)
class GatewayConf:
    """The data plane's settings, read once from `settings.GATEHOUSE`."""

    max_body_bytes: int
    usage_flush_interval: float
    change_poll_interval: float
    upstream_max_connections: int
    default_timeout: float
    db_threads: int
    stock_drf_dispatch: bool

    @classmethod
    def from_settings(cls) -> GatewayConf:
        conf = settings.GATEHOUSE
        return cls(
            max_body_bytes=conf["MAX_BODY_BYTES"],
            usage_flush_interval=conf["USAGE_FLUSH_INTERVAL"],
            change_poll_interval=conf["CHANGE_POLL_INTERVAL"],
            upstream_max_connections=conf["UPSTREAM_MAX_CONNECTIONS"],
            default_timeout=conf["DEFAULT_TIMEOUT"],
            db_threads=conf["DB_THREADS"],
            stock_drf_dispatch=conf["STOCK_DRF_DISPATCH"],
        )


class Executors:
    """Thread pools for the blocking work of the data plane, one per kind of work."""

    def __init__(self, *, db_threads: int, key_threads: int) -> None:
        self.db = ThreadPoolExecutor(max_workers=db_threads, thread_name_prefix="gatehouse-db")
        self.keys = ThreadPoolExecutor(max_workers=key_threads, thread_name_prefix="gatehouse-keys")
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gatehouse-writer")
        self.poller = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gatehouse-poller")

    def shutdown(self) -> None:
        for pool in (self.db, self.keys, self.writer, self.poller):
            pool.shutdown(wait=True, cancel_futures=False)


def _in_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ORM work in a pool thread and give the connection back when done (to the
    PostgreSQL pool; on SQLite a reconnect is a file open), so no thread keeps one."""
    close_old_connections()
    try:
        return fn(*args, **kwargs)
    finally:
        connections.close_all()


def _keeping_connection(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a job on the writer or the poller thread, each of which keeps its connection
    between jobs (closed by `Gateway.stop`); a broken one is replaced before the next."""
    connections_repair()
    return fn(*args, **kwargs)


def _log_failure(future) -> None:
    if not future.cancelled() and future.exception() is not None:
        logger.error("background write failed: %s", future.exception())


class Snapshots:
    """The registry snapshot and the routing snapshot compiled against it.

    Rebuilds may overlap (the change-feed poller and an explicit refresh): they
    take turns, so a build that read older data never replaces a newer one.
    """

    def __init__(self, *, state: RoutingState) -> None:
        self.state = state
        self.catalog: CatalogSnapshot | None = None
        self.routing: RoutingSnapshot | None = None
        self._lock = threading.Lock()

    def _install(self, snapshot: RoutingSnapshot) -> None:
        state = self.state
        if hasattr(state, "configure"):
            state.configure(namespace=snapshot.namespace)
        self.routing = snapshot

    def refresh(self) -> None:
        """Rebuild both (the registry changed). Blocking: call from a pool thread."""
        with self._lock:
            catalog = catalog_build()
            compiled = routing_build(catalog)  # routes are compiled against the registry
            self.catalog = catalog
            self._install(compiled)

    def refresh_routing(self) -> None:
        """Recompile the routing policies against the current registry (blocking)."""
        if self.catalog is None:
            self.refresh()
            return
        with self._lock:
            self._install(routing_build(self.catalog))


class Gateway:
    """One process's data plane: made once, started, used by every request, stopped."""

    def __init__(self, *, conf: GatewayConf | None = None, background: bool = True) -> None:
        self.conf = conf or GatewayConf.from_settings()
        self.background = background
        key_settings = KeyCacheSettings.from_settings()
        self.executors = Executors(db_threads=self.conf.db_threads, key_threads=key_settings.max_concurrent)
        self.clock = SettableClock()
        self.state = routing_state_from_settings(settings.GATEHOUSE, redis_url=settings.REDIS_URL, clock=self.clock)
        self.snapshots = Snapshots(state=self.state)
        self.keys = KeyCache(executor=self.executors.keys, config=key_settings)
        self.auth_limiter = auth_limiter_build(redis_url=settings.REDIS_URL)
        self.changes = ChangeFeed(ChangeFeedSettings.from_settings())
        self.trusted_proxies: tuple[str, ...] = tuple(settings.GATEHOUSE["TRUSTED_PROXIES"])
        self.budgets = self._new_budgets()
        self.ledger = LedgerBuffer()
        self.telemetry = Telemetry.from_settings()  # Prometheus series and OpenTelemetry GenAI spans
        # Admissions of requests still running, by request id: their holds are renewed
        # so that none expires under a long call, a slow first token or a long stream.
        self.holding: dict[str, Any] = {}
        self.guard: Guard | None = None  # built at start (it reads the policies)
        self.usage = UsageSink(
            journal_dir=settings.GATEHOUSE["JOURNAL_DIR"], buffer_max=settings.GATEHOUSE["USAGE_BUFFER_MAX"]
        )
        self.http: httpx.AsyncClient | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task] = []
        self._starting: asyncio.Future | None = None
        self._stopped = False
        # Background jobs can be paused (`pause_background`): tests empty the database
        # between cases, and a job writing at that moment would race the emptying.
        self._paused = False
        self._busy = 0

    # -- life cycle ------------------------------------------------------------------------

    def _new_budgets(self) -> Budgets:
        """The budget engine: database admissions on a thread of their own (never behind a
        usage write or a key lookup), its writes on another."""
        return Budgets(clock=SYSTEM_CLOCK)

    async def budgets_reload(self) -> None:
        """The budget settings changed (a store switched): a new engine; else rebuild its definitions."""
        if budget_settings() == self.budgets.conf:
            await self.budgets.changed()
            return
        old, self.budgets = self.budgets, self._new_budgets()
        await old.stop()
        await self.budgets.start()

    def _new_http_client(self) -> httpx.AsyncClient:
        return upstream_client(max_connections=self.conf.upstream_max_connections, timeout=self.conf.default_timeout)

    async def ready(self) -> Gateway:
        """Start on first use (servers that send no lifespan events); later calls cost one check."""
        starting = self._starting
        if starting is not None and starting.done() and (starting.cancelled() or starting.exception() is not None):
            self._starting = None  # a failed start (database down) is tried again by the next request
        if self._starting is None:
            self._starting = asyncio.ensure_future(self._start())
        if not self._starting.done():
            await asyncio.shield(self._starting)
        else:
            self._starting.result()
        return self

    async def start(self) -> Gateway:
        return await self.ready()

    async def _start(self) -> None:
        self.loop = asyncio.get_running_loop()
        if self.http is None:
            self.http = self._new_http_client()
        # What a process that died left in the journal is recorded before anything new.
        replayed = await self.writer(self.usage.replay)
        if replayed:
            logger.warning("recorded %d requests from the journal of a process that stopped unexpectedly", replayed)
        await self.db(self.changes.head)  # before the snapshots: nothing after it is missed
        if self.snapshots.catalog is None:
            await self.db(self.snapshots.refresh)
        if self.guard is None:
            self.guard = await self.db(Guard.build)
        await self.budgets.start()
        if self.background:
            self._tasks = [
                asyncio.create_task(self._every(self.conf.change_poll_interval, self.poll_changes)),
                asyncio.create_task(self._every(self.conf.usage_flush_interval, self.flush_usage)),
                asyncio.create_task(self._every(self.budgets.tick_interval(), self._budgets_tick)),
                asyncio.create_task(self._renew_holds()),
            ]
            if self.changes.config.redis_url:
                self._tasks.append(asyncio.create_task(self.changes.listen(self.apply_changes)))
            probe = settings.GATEHOUSE["HEALTH_PROBE"]
            if probe["enabled"]:
                self._tasks.append(asyncio.create_task(self._every(probe["interval"], self.probe_deployments)))

    async def stop(self) -> None:
        """Stop the loops and write everything still buffered; safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._starting is not None and self._starting.done() and not self._starting.exception():
            await self.budgets.stop()
            await self.state.flush()
        await self.writer(self.usage.flush_final)
        if len(self.ledger):
            await self.writer(self._write_batch)
        if self.http is not None:
            await self.http.aclose()
        closing = getattr(self.auth_limiter, "aclose", None)
        if closing is not None:
            await closing()
        await self.writer(self.telemetry.shutdown)  # what OpenTelemetry still holds goes out
        await self.writer(connections.close_all)  # the connections these two threads kept
        await self.poller(connections.close_all)
        self.executors.shutdown()
        # Work the budget engine ran through asgiref's shared thread: give that connection back too.
        await sync_to_async(connections.close_all)()

    async def _every(self, interval: float, job: Callable[[], Awaitable[Any]]) -> None:
        # While the database is unreachable every run fails the same way: say so once,
        # and once more when it recovers, instead of flooding the log.
        failing = ""
        while True:
            await asyncio.sleep(interval)
            if self._paused:
                continue
            self._busy += 1
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if str(exc) != failing:
                    failing = str(exc)
                    logger.exception("background job %s failed; retrying every %ss", job.__name__, interval)
            else:
                if failing:
                    logger.info("background job %s recovered", job.__name__)
                    failing = ""
            finally:
                self._busy -= 1

    # -- blocking work in the gateway's own threads -------------------------------------------

    async def db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking database read (key lookups, snapshot builds, feed polls)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executors.db, partial(_in_thread, fn, *args, **kwargs))

    async def writer(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking write of buffered records, in order, on the writer thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executors.writer, partial(_keeping_connection, fn, *args, **kwargs))

    async def poller(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking read of the change feed on the poller thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executors.poller, partial(_keeping_connection, fn, *args, **kwargs))

    # -- background jobs -----------------------------------------------------------------------

    async def poll_changes(self) -> None:
        # On a thread of its own that keeps its connection: four polls a second would
        # otherwise each open one (on SQLite a file open and its PRAGMAs).
        await self.apply_changes(await self.poller(self.changes.poll))

    async def apply_changes(self, events: list[Change]) -> None:
        """Act on changes (from the poll or Redis): each arrives exactly once per process."""
        if not events:
            return
        rebuild = budgets_changed = reroute = guard_changed = False
        for event in events:
            topic = event.topic
            if topic == RESYNC:
                self.keys.clear()
                rebuild = budgets_changed = guard_changed = True
            elif topic == "key":
                self.keys.invalidate(event.ref)
            elif topic == "catalog":
                rebuild = True
            elif topic == "budgets":
                budgets_changed = True
            elif topic == "routing":
                reroute = True
            elif topic == "guard":
                guard_changed = True
        if rebuild:
            await self.db(self.snapshots.refresh)
        elif reroute:
            await self.db(self.snapshots.refresh_routing)
        if budgets_changed:
            await self.budgets.changed()
        if guard_changed and self.guard is not None:
            await self.db(self.guard.refresh)

    async def _renew_holds(self) -> None:
        """Renew the holds of running requests a few times per hold lifetime (the renewals
        are batched into the budget engine's next tick)."""
        loop = asyncio.get_running_loop()
        renewed_at = loop.time()
        while True:
            # Wake often (a check of the clock): a hold admitted just after a renewal is
            # renewed within a third of its lifetime plus this step, whatever the lifetime.
            await asyncio.sleep(RENEW_STEP)
            every = min(RENEW_EVERY_MAX, self.budgets.conf.hold_ttl / 3)  # the engine may be rebuilt
            if loop.time() - renewed_at < every:
                continue
            renewed_at = loop.time()
            try:
                for admission in list(self.holding.values()):
                    self.budgets.renew(admission)
            except Exception:
                logger.exception("renewing the holds of running requests failed; trying again")

    async def probe_deployments(self) -> list:
        """One round of health probes (docs/model-governance.md); one process per round
        probes each deployment when the routing state is shared."""
        from routing.probe import probe_round

        probe = settings.GATEHOUSE["HEALTH_PROBE"]
        return await probe_round(self, timeout=probe["timeout"], claim_ttl=probe["interval"] * 0.9)

    async def _budgets_tick(self) -> None:
        await self.budgets.tick()

    def _write_batch(self) -> int:
        """Usage records first, then their ledger leaves (both idempotent by request id)."""
        written = self.usage.flush()
        if len(self.ledger):
            leaves = self.ledger.drain()
            try:
                ledger_write(leaves)
            except Exception as exc:
                # Kept for the next batch (the database may be down; the write is idempotent).
                logger.warning("writing %d ledger leaves failed (%s); kept for the next batch", len(leaves), exc)
                for leaf in leaves:
                    self.ledger.append_request(leaf)
        return written

    async def flush_usage(self) -> int:
        if not len(self.usage) and not len(self.ledger):
            return 0
        return await self.writer(self._write_batch)

    async def drain(self) -> None:
        """Write now what the background loops would write soon: usage, settlements, holds."""
        await self.flush_usage()
        await self.budgets.tick()

    async def pause_background(self) -> None:
        """Stop starting background jobs and wait for the running ones to end (tests
        empty the database between cases); `resume_background` starts them again."""
        self._paused = True
        while self._busy:
            await asyncio.sleep(0.01)

    async def resume_background(self) -> None:
        self._paused = False

    # -- from other threads (tests, management commands) ---------------------------------------

    def call_soon(self, make: Callable[[], Awaitable[T]], timeout: float = 10.0) -> T | None:
        """Run a coroutine on the gateway's loop from another thread and wait for it."""
        loop = self.loop
        if loop is None or loop.is_closed() or not loop.is_running():
            return None
        return asyncio.run_coroutine_threadsafe(make(), loop).result(timeout)

    def refresh_now(self) -> None:
        """Make the gateway see the database as it is now (blocking; tests and commands)."""
        self.snapshots.refresh()
        self.keys.clear()
        if self.guard is not None:
            self.guard.refresh()

    def review(self, *, organization_id: int, request_id: str, verdict) -> None:
        """Put a flagged request in its organization's review queue, off the event loop."""
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        future = loop.run_in_executor(
            self.executors.db,
            partial(
                _in_thread, review_enqueue, organization_id=organization_id, request_id=request_id, verdict=verdict
            ),
        )
        future.add_done_callback(_log_failure)
