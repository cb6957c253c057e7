"""One workspace turn through the pipeline, as a stream of events.

The turn goes through `routing.facade` exactly as a `/v1` request with the
member's workspace key would: budgets, rate limits, guard, compliance routing,
usage records and the ledger all apply. Database work runs in the gateway's own
threads (`gateway.db`), so this is safe both on the serving loop and in a
short-lived gateway.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any, TypeVar

from asgiref.sync import async_to_sync
from django.core.exceptions import ValidationError

from budgets.facade import cost_of
from routing.facade import Gateway, chat_stream, gateway_open, key_context, models, request_context
from workspace.conf import workspace_conf
from workspace.knowledge import embed, knowledge_prompt
from workspace.markdown import markdown_html
from workspace.models import Message
from workspace.retrieval import knowledge_search
from workspace.services import TurnOutcome, TurnPlan, turn_prepare, turn_record

T = TypeVar("T")


def message_event(message: Message) -> dict[str, Any]:
    """A stored message as the page shows it."""
    return {
        "type": message.kind,
        "id": message.pk,
        "content": message.content,
        "html": markdown_html(message.content) if message.kind == "answer" else "",
        "model": message.model,
        "deployment": message.deployment,
        "prompt_tokens": message.prompt_tokens,
        "completion_tokens": message.completion_tokens,
        "cost": f"{message.cost.normalize():f}",
        "error_code": message.error_code,
        "stopped": message.stopped,
        "ttft_ms": message.ttft_ms,
        "citations": message.citations,
    }


def _cost(ctx: Any) -> Decimal:
    """The turn's cost by the rule settle uses (the same prices, the same usage)."""
    usage, model = getattr(ctx, "usage", None), getattr(ctx, "model", None)
    if usage is None or model is None:
        return Decimal(0)
    return cost_of(
        input_tokens=usage.prompt_tokens,
        output_tokens=usage.completion_tokens,
        cached_tokens=usage.cached_tokens,
        cache_write_5m_tokens=usage.cache_write_5m_tokens,
        cache_write_1h_tokens=usage.cache_write_1h_tokens,
        input_price=model.price.input,
        output_price=model.price.output,
        cached_input_price=model.price.cached_input,
    ).total


async def _conversation_total(gateway: Gateway, conversation_id: int) -> dict[str, Any]:
    from workspace.models import Conversation

    def read() -> dict[str, Any]:
        c = Conversation.objects.get(pk=conversation_id)
        return {"type": "total", "cost": f"{c.total_cost.normalize():f}", "tokens": c.total_tokens, "model": c.model}

    return await gateway.db(read)


async def turn_events(
    gateway: Gateway,
    *,
    conversation_id: int,
    user_id: int,
    content: str = "",
    model: str = "",
    regenerate: bool = False,
    edit_of: int | None = None,
    attachment: tuple[str, str] | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """Events of one turn: `asked` (the stored question), `remembered` or `suggestion` (a fact
    saved on request, or offered to save), `start`, `delta`*, then `switch`?, `answer` or
    `refusal`, then `total`.

    Closing the iteration early (the reader stopped) keeps what was answered so far."""
    plan: TurnPlan = await gateway.db(
        turn_prepare,
        conversation_id=conversation_id,
        user_id=user_id,
        content=content,
        model=model,
        regenerate=regenerate,
        edit_of=edit_of,
        attachment=attachment,
    )
    if plan.asked_id is not None:
        yield {"type": "asked", "id": plan.asked_id, "content": plan.query}
    if plan.remembered:
        yield {"type": "remembered", "content": plan.remembered}
    if plan.suggestion:
        yield {"type": "suggestion", "content": plan.suggestion}
    if plan.refusal is not None:
        yield message_event(plan.refusal)
        yield await _conversation_total(gateway, conversation_id)
        return
    key = await key_context(gateway, key_id=plan.key_id)
    if key is None:
        stored = await gateway.db(
            turn_record,
            plan=plan,
            outcome=TurnOutcome(
                status=401, error_code="invalid_api_key", error_message="The workspace key is not valid."
            ),
        )
        for message in stored:
            yield message_event(message)
        return
    if plan.knowledge_base_id:
        await _add_knowledge(gateway, plan)
    ctx = request_context(gateway, key, endpoint="chat", headers=plan.headers)
    started = time.perf_counter()
    first_token: float | None = None
    reply = await chat_stream(gateway, ctx, plan.body)
    headers = reply.headers
    if reply.relay is None:
        error = (reply.payload or {}).get("error") or {}
        outcome = TurnOutcome(
            status=reply.status,
            request_id=headers.get("x-request-id", ""),
            error_code=str(error.get("code") or error.get("type") or ""),
            error_message=str(error.get("message") or ""),
        )
        for message in await gateway.db(turn_record, plan=plan, outcome=outcome):
            yield message_event(message)
        yield await _conversation_total(gateway, conversation_id)
        return
    yield {
        "type": "start",
        "model": headers.get("x-gatehouse-model", plan.model),
        "deployment": headers.get("x-gatehouse-deployment", ""),
        "switching": plan.switching,
    }
    parts: list[str] = []
    error: dict[str, Any] | None = None
    finished = False
    chunks = reply.relay.chunks()
    try:
        async for chunk in chunks:
            if "error" in chunk:
                error = chunk["error"] or {}
                break
            for choice in chunk.get("choices") or ():
                text = (choice.get("delta") or {}).get("content")
                if text:
                    if first_token is None:
                        first_token = time.perf_counter()
                    parts.append(text)
                    yield {"type": "delta", "text": text}
        finished = True
    finally:
        await chunks.aclose()  # settles the request now (its record, its budget hold)
        relay_ctx = reply.relay.ctx
        usage = relay_ctx.usage
        outcome = TurnOutcome(
            status=200 if error is None else 502,
            text="".join(parts),
            model=headers.get("x-gatehouse-model", plan.model),
            deployment=headers.get("x-gatehouse-deployment", ""),
            request_id=headers.get("x-request-id", ""),
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            cost=_cost(relay_ctx),
            stopped=not finished,
            ttft_ms=None if first_token is None else round((first_token - started) * 1000),
        )
        if error is not None:
            outcome.status = 400
            outcome.error_code = str(error.get("code") or error.get("type") or "")
            outcome.error_message = str(error.get("message") or "")
        stored = await gateway.db(turn_record, plan=plan, outcome=outcome)
    for message in stored:
        yield message_event(message)
    yield await _conversation_total(gateway, conversation_id)


async def _add_knowledge(gateway: Gateway, plan: TurnPlan) -> None:
    """The knowledge base's best chunks for the question, as a system message before it."""
    vector = None
    with contextlib.suppress(ValidationError, IndexError):  # then the search uses keywords alone
        vector = (await embed(gateway, key_id=plan.key_id, model=plan.embedding_model, texts=[plan.query]))[0]
    hits = await gateway.db(
        knowledge_search,
        knowledge_base_id=plan.knowledge_base_id,
        query=plan.query,
        vector=vector,
        limit=workspace_conf().retrieve_chunks,
    )
    if hits:
        text, plan.citations = knowledge_prompt(hits)
        messages = plan.body["messages"]
        messages.insert(len(messages) - 1, {"role": "system", "content": text})


async def turn_run(gateway: Gateway, **kwargs: Any) -> list[dict[str, Any]]:
    """A whole turn, its events collected (a caller that does not stream)."""
    return [event async for event in turn_events(gateway, **kwargs)]


async def models_offered(gateway: Gateway, *, key_id: int) -> list[str]:
    """What `GET /v1/models` lists for the key: the models it may use that are deployed."""
    key = await key_context(gateway, key_id=key_id)
    if key is None:
        return []
    ctx = request_context(gateway, key, endpoint="models", headers={"x-gatehouse-tags": "workspace"})
    reply = await models(gateway, ctx)
    if not reply.ok:
        return []
    return [entry["id"] for entry in reply.payload.get("data") or []]


def with_gateway(gateway: Gateway | None, make: Callable[[Gateway], Awaitable[T]], *, timeout: float = 60) -> T:
    """Run `make(gateway)` from synchronous code: on the serving process's gateway when
    there is one, else on a short-lived gateway (tests, commands) stopped afterwards."""
    if gateway is not None and gateway.loop is not None and gateway.loop.is_running():
        return gateway.call_soon(lambda: make(gateway), timeout=timeout)

    async def once() -> T:
        opened = await gateway_open()
        try:
            return await make(opened)
        finally:
            await opened.stop()

    return async_to_sync(once)()
