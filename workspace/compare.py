"""The compare view's calls: one prompt to two or three models at once, each through the
pipeline with the member's workspace key (so each lands on their budget and in usage)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from routing.facade import Gateway, chat, key_context, request_context
from workspace.conf import workspace_conf
from workspace.markdown import markdown_html
from workspace.services import refusal_reason

MAX_MODELS = 3


@dataclass(frozen=True, slots=True)
class Side:
    """One model's answer (or refusal) to the compared prompt."""

    model: str
    ok: bool
    html: str = ""
    text: str = ""
    reason: str = ""
    deployment: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: Decimal = Decimal(0)
    latency_ms: int = 0
    request_id: str = ""


async def _one(gateway: Gateway, key, *, model: str, prompt: str, data_class: str, username: str) -> Side:
    headers = {"x-gatehouse-tags": workspace_conf().tag, "x-data-classification": data_class}
    ctx = request_context(gateway, key, endpoint="chat", headers=headers)
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], "user": username}
    started = time.perf_counter()
    reply = await chat(gateway, ctx, body)
    latency = round((time.perf_counter() - started) * 1000)
    request_id = reply.headers.get("x-request-id", "")
    if not reply.ok:
        error = (reply.payload or {}).get("error") or {}
        code = str(error.get("code") or error.get("type") or "")
        reason = refusal_reason(code=code, message=str(error.get("message") or ""), model=model, data_class=data_class)
        return Side(model=model, ok=False, reason=reason, latency_ms=latency, request_id=request_id)
    payload = reply.payload or {}
    choices = payload.get("choices") or [{}]
    text = ((choices[0] or {}).get("message") or {}).get("content") or ""
    usage = payload.get("usage") or {}
    try:
        cost = Decimal(reply.headers.get("x-gatehouse-cost") or "0")
    except InvalidOperation:
        cost = Decimal(0)
    return Side(
        model=reply.headers.get("x-gatehouse-model", model),
        ok=True,
        text=text,
        html=markdown_html(text),
        deployment=reply.headers.get("x-gatehouse-deployment", ""),
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        cost=cost,
        latency_ms=latency,
        request_id=request_id,
    )


async def compare(
    gateway: Gateway, *, key_id: int, models: list[str], prompt: str, data_class: str, username: str
) -> list[Side]:
    """Each model's side, in the order asked; the calls run at the same time."""
    key = await key_context(gateway, key_id=key_id)
    if key is None:
        return [Side(model=m, ok=False, reason="The workspace key is not valid (revoked or expired).") for m in models]
    return list(
        await asyncio.gather(
            *(_one(gateway, key, model=m, prompt=prompt, data_class=data_class, username=username) for m in models)
        )
    )
