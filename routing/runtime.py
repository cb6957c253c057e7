"""Per-process state of the data plane and its background loops.

Process-wide: the registry snapshot (swapped on change), the key cache and the
usage buffer. Per event loop: the pooled HTTP client and the loops that poll the
change feed and flush usage. ASGI lifespan starts and stops them; the first
request starts them when a server sends no lifespan events.
"""

from __future__ import annotations

import asyncio
import logging
import weakref

import httpx
from asgiref.sync import sync_to_async
from django.conf import settings
from httpx_aiohttp import AiohttpTransport

from budgets.usage import usage_buffer
from console.changes import change_feed_head, change_feed_since
from console.keycache import key_cache
from providers.snapshot import CatalogSnapshot, catalog_build

logger = logging.getLogger(__name__)


class Catalog:
    """Holder of the current registry snapshot; readers take `.current`."""

    def __init__(self) -> None:
        self.current: CatalogSnapshot | None = None

    def refresh(self) -> CatalogSnapshot:
        self.current = catalog_build()
        return self.current


catalog = Catalog()


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
        if self.background:
            self._tasks = [
                asyncio.create_task(self._every(settings.GATEHOUSE["CHANGE_POLL_INTERVAL"], self.poll_changes)),
                asyncio.create_task(self._every(settings.GATEHOUSE["USAGE_FLUSH_INTERVAL"], self.flush_usage)),
            ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._tasks = []
        await self.flush_usage()
        await self.http.aclose()

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
        rebuild = False
        for event_id, topic, ref in events:
            self.change_cursor = event_id
            if topic == "key":
                key_cache.invalidate(ref)
            elif topic == "catalog":
                rebuild = True
        if rebuild:
            await sync_to_async(catalog.refresh)()

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
