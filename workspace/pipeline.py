"""The workspace's one door to the pipeline: `routing.facade`.

`routing.facade` imports `console.keycache.key_context_by_id`, which the console
does not define yet; until it does, the same functions are taken from where the
facade takes them and a key's context is loaded by its stored digest (what the
facade's lookup by id will do). Once the facade imports, it is used as is.
"""

from __future__ import annotations

try:
    from routing.facade import (
        Gateway,
        KeyContext,
        Reply,
        chat,
        chat_stream,
        embeddings,
        gateway_open,
        key_context,
        models,
        request_context,
    )
except ImportError:
    from collections.abc import Mapping

    from console.keycache import KeyContext, key_context_load
    from console.models import ApiKey
    from routing.gateway import Gateway
    from routing.pipeline.context import RequestContext
    from routing.pipeline.run import Reply, chat, chat_stream, embeddings, models

    def _key_context_by_id(key_id: int) -> KeyContext | None:
        digest = ApiKey.objects.filter(pk=key_id).values_list("secret_hash", flat=True).first()
        return key_context_load(digest) if digest else None

    async def gateway_open() -> Gateway:
        gateway = Gateway(background=False)
        await gateway.start()
        return gateway

    async def key_context(gateway: Gateway, *, key_id: int) -> KeyContext | None:
        return await gateway.db(_key_context_by_id, key_id)

    def request_context(
        gateway: Gateway, key: KeyContext, *, endpoint: str = "chat", headers: Mapping[str, str] | None = None
    ) -> RequestContext:
        return RequestContext.new(
            gateway, key, endpoint=endpoint, headers={k.lower(): v for k, v in (headers or {}).items()}
        )


__all__ = [
    "Gateway",
    "KeyContext",
    "Reply",
    "chat",
    "chat_stream",
    "embeddings",
    "gateway_open",
    "key_context",
    "models",
    "request_context",
]
