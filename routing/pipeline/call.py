"""Stage 7 — call: send the request to the candidates in order until one answers.

Retryable failures (429, 5xx, timeouts, connection errors) move on to the next
candidate; anything else is final. Streams may only move on before the first
chunk, which `open_stream` guarantees by checking the status first.
"""

from __future__ import annotations

from typing import Any

import httpx

from providers.adapters import get_adapter
from providers.adapters.base import ChatResult, ChatStream, EmbeddingResult, UpstreamError
from providers.snapshot import DeploymentInfo
from routing.pipeline.context import RequestContext


def _upstream_body(body: dict[str, Any], deployment: DeploymentInfo) -> dict[str, Any]:
    return {**body, "model": deployment.target.upstream_model}


def _record_failure(ctx: RequestContext, deployment: DeploymentInfo, exc: UpstreamError) -> None:
    ctx.attempt_trail.append(
        {
            "deployment": deployment.name,
            "status": exc.upstream_status or exc.status,
            "error": exc.code or exc.type,
            "message": exc.message[:200],
        }
    )


async def _attempts(ctx: RequestContext, candidates: list[DeploymentInfo], max_attempts: int, call):
    last_error: UpstreamError | None = None
    for deployment in candidates[:max_attempts]:
        ctx.attempts += 1
        ctx.deployment = deployment
        try:
            return await call(deployment)
        except UpstreamError as exc:
            _record_failure(ctx, deployment, exc)
            last_error = exc
            if not exc.retryable:
                raise
    assert last_error is not None
    raise last_error


async def chat_call(
    ctx: RequestContext,
    http: httpx.AsyncClient,
    candidates: list[DeploymentInfo],
    body: dict[str, Any],
    *,
    max_attempts: int,
) -> ChatResult:
    async def call(deployment: DeploymentInfo) -> ChatResult:
        adapter = get_adapter(deployment.provider_kind)
        return await adapter.chat(http, deployment.target, _upstream_body(body, deployment))

    return await _attempts(ctx, candidates, max_attempts, call)


async def stream_open(
    ctx: RequestContext,
    http: httpx.AsyncClient,
    candidates: list[DeploymentInfo],
    body: dict[str, Any],
    *,
    max_attempts: int,
) -> ChatStream:
    async def call(deployment: DeploymentInfo) -> ChatStream:
        adapter = get_adapter(deployment.provider_kind)
        return await adapter.open_stream(http, deployment.target, _upstream_body(body, deployment))

    return await _attempts(ctx, candidates, max_attempts, call)


async def embeddings_call(
    ctx: RequestContext,
    http: httpx.AsyncClient,
    candidates: list[DeploymentInfo],
    body: dict[str, Any],
    *,
    max_attempts: int,
) -> EmbeddingResult:
    async def call(deployment: DeploymentInfo) -> EmbeddingResult:
        adapter = get_adapter(deployment.provider_kind)
        return await adapter.embeddings(http, deployment.target, _upstream_body(body, deployment))

    return await _attempts(ctx, candidates, max_attempts, call)
