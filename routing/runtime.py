"""Per-process state of the data plane and its background loops.

Process-wide: the registry snapshot (swapped on change), the key cache and the
usage buffer. Per event loop: the pooled HTTP client and the loops that poll the
change feed and flush usage. ASGI lifespan starts and stops them; the first
request starts them when a server sends no lifespan events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import weakref

import httpx
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections
from httpx_aiohttp import AiohttpTransport

from budgets.facade import budgets_changed, budgets_start, budgets_stop, budgets_tick, tick_interval
from budgets.usage import usage_buffer
from console.changes import change_feed_head, change_feed_since
from console.keycache import key_cache
from providers.snapshot import CatalogSnapshot, catalog_build
from routing.engine.snapshot import RoutingSnapshot, routing_build
from routing.engine.state import routing_state

logger = logging.getLogger(__name__)


# Builds can overlap (the change-feed poller and an explicit refresh run in
# different threads): they take turns, so a build that read older data can never
# replace one that read newer data.
_build_lock = threading.Lock()


class Catalog:
    """Holder of the current registry snapshot; readers take `.current`."""

    def __init__(self) -> None:
        self.current: CatalogSnapshot | None = None

    def refresh(self) -> CatalogSnapshot:
        with _build_lock:
            snapshot = catalog_build()
            compiled = routing_build(snapshot)  # routes are compiled against the registry
            self.current = snapshot
            policies.install(compiled)
        return snapshot


class Routing:
    """Holder of the current routing snapshot (policies, rules, matrix, breakers)."""

    def __init__(self) -> None:
        self.current: RoutingSnapshot | None = None

    def install(self, snapshot: RoutingSnapshot) -> None:
        state = routing_state()
        if hasattr(state, "configure"):
            state.configure(namespace=snapshot.namespace)
        self.current = snapshot

    def refresh(self) -> RoutingSnapshot:
        if catalog.current is None:
            catalog.refresh()
            return self.current
        with _build_lock:
            snapshot = routing_build(catalog.current)
            self.install(snapshot)
        return snapshot


catalog = Catalog()
policies = Routing()


def _new_http_client() -> httpx.AsyncClient:
    limit = settings.GATEHOUSE["UPSTREAM_MAX_CONNECTIONS"]
    limits = httpx.Limits(max_connections=limit, max_keepalive_connections=limit, keepalive_expiry=30)
    return httpx.AsyncClient(transport=AiohttpTransport(limits=limits), timeout=settings.GATEHOUSE["DEFAULT_TIMEOUT"])


class GatewayRuntime:
    def __init__(self, *, background: bool = True) -> None:
        self.http = _new_http_client()
        self.background = background
        self.change_cursor = 0
        self._tasks: list[asyncio.Task] = []
        self._started = False
        self.starting: asyncio.Future | None = None

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        self.change_cursor = await sync_to_async(change_feed_head)()
        if catalog.current is None:
            await sync_to_async(catalog.refresh)()
        await budgets_start()
        if self.background:
            self._tasks = [
                asyncio.create_task(self._every(settings.GATEHOUSE["CHANGE_POLL_INTERVAL"], self.poll_changes)),
                asyncio.create_task(self._every(settings.GATEHOUSE["USAGE_FLUSH_INTERVAL"], self.flush_usage)),
                asyncio.create_task(self._every(tick_interval(), budgets_tick)),
            ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await budgets_stop()
        await self.flush_usage()
        await routing_state().flush()
        await self.http.aclose()
        # The database work of this loop ran in one worker thread; give its connection back.
        await sync_to_async(connections.close_all)()

    async def _every(self, interval: float, job) -> None:
        # While the database is unreachable every run fails the same way: say so once,
        # and once more when it recovers, instead of flooding the log.
        failing = ""
        while True:
            await asyncio.sleep(interval)
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

    async def poll_changes(self) -> None:
        events = await sync_to_async(change_feed_since)(self.change_cursor)
        if not events:
            return
        rebuild = budgets = reroute = False
        for event_id, topic, ref in events:
            self.change_cursor = event_id
            if topic == "key":
                key_cache.invalidate(ref)
            elif topic == "catalog":
                rebuild = True
            elif topic == "budgets":
                budgets = True
            elif topic == "routing":
                reroute = True
        if rebuild:
            await sync_to_async(catalog.refresh)()
        elif reroute:
            await sync_to_async(policies.refresh)()
        if budgets:
            await budgets_changed()

    async def drain(self) -> None:
        """Write now what the background loops would write soon: usage, settlements, holds."""
        await self.flush_usage()
        await budgets_tick()

    async def flush_usage(self) -> int:
        if not len(usage_buffer):
            return 0
        return await sync_to_async(usage_buffer.flush)()


_runtimes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, GatewayRuntime] = weakref.WeakKeyDictionary()


async def runtime() -> GatewayRuntime:
    """The runtime of the running event loop, started on first use."""
    loop = asyncio.get_running_loop()
    current = _runtimes.get(loop)
    if current is None:
        current = _runtimes[loop] = GatewayRuntime()
        current.starting = asyncio.ensure_future(current.start())
    if not current.starting.done():
        await asyncio.shield(current.starting)
    return current


async def runtime_stop() -> None:
    loop = asyncio.get_running_loop()
    current = _runtimes.pop(loop, None)
    if current is not None:
        await current.stop()


def runtimes_drain(timeout: float = 10.0) -> None:
    """From outside the event loops (a test's thread): drain every running gateway loop."""
    for loop, current in list(_runtimes.items()):
        if loop.is_running() and not loop.is_closed():
            asyncio.run_coroutine_threadsafe(current.drain(), loop).result(timeout)
