"""The attempt hooks deployment rate limits plug into: `take` is asked before each
attempt and may skip a deployment for the request; `give_back` hears of every
attempt that ended without an answer. Driven through the pipeline's own call
functions against the simulator over real HTTP."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from console.keycache import key_context_load
from console.services import secret_hash
from providers.adapters.base import UpstreamError
from routing.errors import GatewayError
from routing.pipeline.call import chat_call, embeddings_call
from routing.pipeline.context import RequestContext
from routing.pipeline.route import route_order, route_resolve
from routing.pipeline.streams import stream_open
from tests.conftest import server_gateway
from tests.routing.support import HELLO, model_card, policy, reset_state, sim_deployment


class Hooks:
    """A simple limiter: refuses the deployments named in `full`, keeps a log."""

    def __init__(self, full: set[str] = frozenset()) -> None:
        self.full = full
        self.taken: list[str] = []
        self.given_back: list[str] = []

    async def take(self, candidate) -> bool:
        name = candidate.deployment.name
        if name in self.full:
            return False
        self.taken.append(name)
        return True

    def give_back(self, candidate) -> None:
        self.given_back.append(candidate.deployment.name)


def plan_for(demo, model: str, body: dict, *, capability: str = "chat"):
    key = key_context_load(secret_hash(demo.secret))
    gateway = server_gateway()
    ctx = RequestContext.new(gateway, key, endpoint=capability, request_id="req_hooks")
    ctx.model_requested = model
    ctx.stream = bool(body.get("stream"))
    gateway.snapshots.refresh()
    found = gateway.snapshots.routing.policy(demo.org.id)
    return ctx, route_resolve(ctx, found, body, capability=capability)


def call(demo, model: str, hooks: Hooks, *, stream: bool = False):
    body = {"model": model, "messages": HELLO, "stream": stream}
    ctx, plan = plan_for(demo, model, body)
    return asyncio.run(_call(ctx, plan, body, hooks, stream=stream))


async def _call(ctx, plan, body, hooks: Hooks, *, stream: bool):
    async with httpx.AsyncClient(timeout=10) as http:
        plan = await route_order(ctx, plan)
        if stream:
            opened = await stream_open(ctx, http, plan, body, take=hooks.take, give_back=hooks.give_back)
            chunks = [chunk async for chunk in opened]
            await opened.aclose()
            return ctx, chunks
        return ctx, await chat_call(ctx, http, plan, body, take=hooks.take, give_back=hooks.give_back)


@pytest.fixture
def trio(demo):
    card = model_card("hook-model")
    failing = sim_deployment(card, "hook@failing", {"x-sim-fault": "500"})
    full = sim_deployment(card, "hook@full")
    good = sim_deployment(card, "hook@good")
    reset_state(failing, full, good)
    policy(
        demo.org,
        demo.owner,
        routes=[
            {
                "name": "hooked",
                "targets": [
                    {"deployment": failing.name, "weight": 10_000},
                    {"deployment": full.name, "weight": 10_000},
                    {"deployment": good.name, "weight": 1},
                ],
                "max_attempts": 5,
            }
        ],
    )
    return failing, full, good


def test_take_skips_a_deployment_at_its_limit_and_give_back_hears_of_failed_attempts(demo, trio):
    failing, full, good = trio
    hooks = Hooks(full={full.name})
    ctx, result = call(demo, "hooked", hooks)
    assert result.body["choices"][0]["message"]["content"]
    assert ctx.deployment.name == good.name
    assert full.name not in hooks.taken and ctx.routing["limited"] == [full.name]
    # Every attempt was taken first; exactly the failed one was given back.
    assert hooks.taken == [failing.name, good.name]
    assert hooks.given_back == [failing.name]
    assert [step["deployment"] for step in ctx.attempt_trail] == hooks.given_back


def test_take_refusing_every_deployment_is_a_429(demo, trio):
    hooks = Hooks(full={d.name for d in trio})
    with pytest.raises(GatewayError) as caught:
        call(demo, "hooked", hooks)
    assert caught.value.status == 429 and caught.value.code == "rate_limit_exceeded"
    assert hooks.taken == [] and hooks.given_back == []


def test_streams_take_the_same_hooks(demo, trio):
    failing, full, good = trio
    hooks = Hooks(full={full.name})
    ctx, chunks = call(demo, "hooked", hooks, stream=True)
    assert chunks and ctx.deployment.name == good.name
    assert hooks.taken == [failing.name, good.name] and hooks.given_back == [failing.name]


def test_embeddings_take_the_same_hooks(demo):
    card = model_card("hook-embed", capabilities=["embeddings"])
    only = sim_deployment(card, "hook-embed@a", {"x-sim-fault": "500"}, upstream="text-embedding-3-small")
    reset_state(only)
    policy(demo.org, demo.owner, routes=[{"name": "embed-route", "targets": [{"deployment": only.name}]}])
    hooks = Hooks()
    body = {"model": "embed-route", "input": "hello"}
    ctx, plan = plan_for(demo, "embed-route", body, capability="embeddings")

    async def run():
        async with httpx.AsyncClient(timeout=10) as http:
            ordered = await route_order(ctx, plan)
            return await embeddings_call(ctx, http, ordered, body, take=hooks.take, give_back=hooks.give_back)

    with pytest.raises(UpstreamError):
        asyncio.run(run())
    assert hooks.taken == [only.name] * 3 and hooks.given_back == [only.name] * 3
