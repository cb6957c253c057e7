"""The pipeline is callable without HTTP: a gateway of its own, a key context, `chat`,
`chat_stream` and `embeddings` — with the same records as `/v1`."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync

from budgets.models import UsageRecord
from routing.facade import chat, chat_stream, embeddings, gateway_open, key_context, request_context
from tests.conftest import usage_wait

HELLO = [{"role": "user", "content": "hi"}]


def _run(demo, work):
    async def go():
        gateway = await gateway_open()
        try:
            key = await key_context(gateway, key_id=demo.key.id)
            assert key is not None and key.organization_id == demo.org.id
            return await work(gateway, key)
        finally:
            await gateway.stop()  # writes what it buffered

    return async_to_sync(go)()


@pytest.mark.django_db(transaction=True)
def test_chat_without_http_is_answered_and_recorded(demo):
    async def work(gateway, key):
        ctx = request_context(gateway, key, headers={"x-gatehouse-tags": "workspace"})
        reply = await chat(gateway, ctx, {"model": "gpt-4o-mini", "messages": HELLO})
        return ctx.request_id, reply

    request_id, reply = _run(demo, work)
    assert reply.status == 200 and reply.payload["object"] == "chat.completion"
    assert reply.headers["x-gatehouse-deployment"]
    record = usage_wait(request_id)
    assert record.key_id == demo.key.id and "workspace" in record.tags and record.cost > 0


@pytest.mark.django_db(transaction=True)
def test_stream_and_refusal_without_http(demo):
    async def work(gateway, key):
        ctx = request_context(gateway, key)
        reply = await chat_stream(gateway, ctx, {"model": "gpt-4o-mini", "messages": HELLO, "stream": True})
        chunks = [chunk async for chunk in reply.relay.chunks()]
        refused_ctx = request_context(gateway, key)
        refused = await chat(gateway, refused_ctx, {"model": "no-such-model", "messages": HELLO})
        vectors_ctx = request_context(gateway, key, endpoint="embeddings")
        vectors = await embeddings(gateway, vectors_ctx, {"model": "text-embedding-3-small", "input": "hello"})
        return ctx.request_id, chunks, refused_ctx.request_id, refused, vectors

    stream_id, chunks, refused_id, refused, vectors = _run(demo, work)
    text = "".join((c["choices"][0]["delta"].get("content") or "") for c in chunks if c.get("choices"))
    assert text and not any("error" in c for c in chunks)
    assert refused.status == 404 and refused.payload["error"]["code"] == "model_not_found"
    assert vectors.status == 200 and vectors.payload["data"][0]["embedding"]
    assert usage_wait(stream_id).status_code == 200 and usage_wait(stream_id).stream
    assert usage_wait(refused_id).status_code == 404
    assert UsageRecord.objects.filter(request_id__in=[stream_id, refused_id]).count() == 2
