"""What other apps may call of `routing`: the pipeline, without HTTP.

The workspace, evaluation runs and tests send requests exactly as `/v1` does —
the same stages, budgets, guard, routing, usage records — by calling these with
a `Gateway` and a key context. A process that is not a gateway server (a Celery
worker, a management command) opens its own short-lived gateway with
`gateway_open()` and stops it when done, which writes its usage records.
"""

from __future__ import annotations

from collections.abc import Mapping

from console.keycache import KeyContext, key_context_by_id
from routing.gateway import Gateway
from routing.pipeline.context import RequestContext
from routing.pipeline.run import Reply, chat, chat_stream, embeddings, models

__all__ = [
    "Gateway",
    "KeyContext",
    "Reply",
    "RequestContext",
    "chat",
    "chat_stream",
    "embeddings",
    "gateway_open",
    "key_context",
    "models",
    "request_context",
]


async def gateway_open() -> Gateway:
    """A started gateway without background loops (its `stop()` writes what it buffered)."""
    gateway = Gateway(background=False)
    await gateway.start()
    return gateway


async def key_context(gateway: Gateway, *, key_id: int) -> KeyContext | None:
    """The context of a virtual key by id (the workspace's and evaluations' own keys)."""
    return await gateway.db(key_context_by_id, key_id)


def request_context(
    gateway: Gateway, key: KeyContext, *, endpoint: str = "chat", headers: Mapping[str, str] | None = None
) -> RequestContext:
    """A new request for `key`; `headers` are what a client would have sent
    (`x-data-classification`, `x-gatehouse-tags`, `x-gatehouse-workflow`)."""
    return RequestContext.new(
        gateway, key, endpoint=endpoint, headers={k.lower(): v for k, v in (headers or {}).items()}
    )
