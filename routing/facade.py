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
    "models_approved",
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


def route_propose_for_review(*, organization, actor, route: dict, summary: str = "") -> int:
    """Propose adding (or replacing) a route as a new policy version that stays pending until
    a second owner or admin approves it, whatever the policy's settings. Returns its number;
    raises django's ValidationError for a route the policy refuses."""
    from routing.selectors import policy_document, policy_head
    from routing.services import route_put

    name = str(route.get("name") or "")
    exists = any(r.get("name") == name for r in policy_document(policy_head(organization=organization))["routes"])
    replaces = name if exists else ""
    version = route_put(
        organization=organization, actor=actor, route=route, replaces=replaces, review=True, summary=summary
    )
    return version.number


def models_approved(gateway: Gateway, *, organization_id: int, names: list[str], data_class: str) -> set[str]:
    """Which of `names` (models or routes) have a deployment the organization's compliance
    matrix approves for `data_class`, from the gateway's snapshot (no query): the
    workspace's picker offers only those for a conversation's class."""
    policy = gateway.snapshots.routing.policy(organization_id)
    approved = set()
    for name in names:
        route = policy.destination(name)
        if route is not None and route.compliant(data_class):
            approved.add(name)
    return approved
