"""The ASGI entry point: one process serves the console, the `/v1` data plane and,
when enabled, the built-in simulator.

`/v1/...` goes to the lean gateway handler (no middleware, no thread hops),
`/static/...` to an in-memory static file server, `/sim/...` to the simulator,
everything else to Django's standard handler.
The app owns the process's `Gateway` (the data plane's composition root):
lifespan events start it and, on a clean shutdown, stop it, which writes every
buffered usage record. Console pages reach it as `request.scope["gatehouse.gateway"]`.
"""

import functools
import gc
import logging
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gatehouse.settings")
django.setup()

from django.conf import settings  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402

from gatehouse.static import StaticFiles  # noqa: E402
from routing.asgi import GatewayASGIHandler  # noqa: E402
from routing.gateway import Gateway  # noqa: E402

logger = logging.getLogger("gatehouse")
GC_YOUNG_THRESHOLD = 5000  # allocations between collections of the youngest generation (Python's default: 700)


@functools.cache  # once per process
def gc_tune() -> None:
    """Once per process, after start-up: keep what start-up built (Django, the guard's
    recognizers, the snapshots) out of the cyclic garbage collector, and collect the
    youngest generation less often.

    Measured on streams at 16 concurrent requests (`bench/run.py`), the collector took
    about 0.35 ms per request, most of it full collections walking the start-up heap;
    frozen and with this threshold, about 0.11 ms, and since a request no longer leaves
    reference cycles behind (`tests/gateway/test_no_reference_cycles.py`) the young
    collections find almost nothing to walk. What the frozen objects hold is never
    collected, which suits objects that live as long as the process.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


class GatehouseApp:
    def __init__(self, gateway: Gateway | None = None) -> None:
        self.gateway = gateway or Gateway()
        self.django = get_asgi_application()
        self.gateway_handler = GatewayASGIHandler(self.gateway)
        self.static = StaticFiles()
        self.simulator = None
        if settings.GATEHOUSE["SIMULATOR"]:
            from providers.simulator.app import app as simulator

            self.simulator = simulator

    async def __call__(self, scope, receive, send) -> None:
        kind = scope["type"]
        if kind == "http":
            path = scope["path"]
            if path.startswith("/v1/") or path == "/v1":
                await self.gateway_handler(scope, receive, send)
                return
            if path.startswith(self.static.prefix):
                await self.static(scope, receive, send)
                return
            if self.simulator is not None and path.startswith("/sim/"):
                inner = {**scope, "path": path[4:], "root_path": scope.get("root_path", "") + "/sim"}
                await self.simulator(inner, receive, send)
                return
            await self.django({**scope, "gatehouse.gateway": self.gateway}, receive, send)
        elif kind == "lifespan":
            await self.lifespan(receive, send)

    async def lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.gateway.start()
                except Exception as exc:  # a broken database must not look like a healthy start
                    logger.exception("gateway runtime failed to start")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                gc_tune()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.gateway.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return


application = GatehouseApp()
