"""A served request is freed by reference counting when it ends, not left in a
reference cycle for the garbage collector: a cycle through the request's context,
DRF's request, the view, the handler's tasks or httpx's response would keep the whole
request (body, headers, records in the making) alive until a collection, and the
collector's walks over them cost the event loop CPU on every request."""

from __future__ import annotations

import gc
import json
import urllib.error
import urllib.request
from collections import Counter

REQUEST_SCOPED = {
    "routing.pipeline.context.RequestContext",
    "routing.pipeline.admit.DeploymentLimits",
    "routing.views.ChatCompletionsView",
    "adrf.requests.AsyncRequest",
    "django.core.handlers.asgi.ASGIRequest",
    "httpx.Response",
    "_asyncio.Task",
    "builtins.traceback",
}


def send(demo, body: dict) -> int:
    # urllib, not httpx: the only httpx responses in this process are the gateway's own.
    request = urllib.request.Request(
        demo.base_url + "/chat/completions",
        data=json.dumps(body).encode(),
        headers={"authorization": f"Bearer {demo.secret}", "content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=20) as response:  # noqa: S310 - the test server
            response.read()
            return response.status
    except urllib.error.HTTPError as exc:
        exc.read()
        return exc.code


def test_requests_leave_no_reference_cycles(demo):
    hello = [{"role": "user", "content": "hello"}]
    cases = [
        {"model": "gpt-4o-mini", "messages": hello},
        {"model": "gpt-4o-mini", "messages": hello, "stream": True},
        {"model": "no-such-model", "messages": hello},
    ]
    for body in cases:  # warm up: first-use caches are not garbage
        send(demo, body)
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        statuses = [send(demo, body) for body in cases for _ in range(3)]
        gc.collect()
        found = Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert statuses == [200, 200, 200, 200, 200, 200, 404, 404, 404]
    assert {name: count for name, count in found.items() if name in REQUEST_SCOPED} == {}
