"""A hard budget holds on every route shape, not just single-model routes.

The hold is priced on the worst case the plan can reach — every target, every
fallback, every cascade layer — so a route that ends on a pricier model than
its first target cannot spend past the limit: requests are sent one after the
other until the budget refuses, and what was spent stays within the limit plus
at most one request's worst case. Requests arrive together, as they do in
production: every one of them holds its reservation while it runs.
"""

# ruff: noqa: F811 - the fixtures are imported from tests.budgets.helpers

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from budgets import services as budget_services
from budgets.models import UsageRecord
from budgets.pricing import cost_of
from providers.tokens import estimate_prompt_tokens
from tests.budgets.helpers import budget_sync, clean_budget_state, store, wait_until  # noqa: F401
from tests.conftest import gateway_sync
from tests.routing.support import chat, model_card, policy, reset_state, sim_deployment

PROMPT = [{"role": "user", "content": "Give me the order as JSON."}]
MAX_TOKENS = 100
# Every answer uses max_tokens, and takes long enough that the burst's requests overlap.
ALWAYS_FULL = {"x-sim-output-tokens": str(MAX_TOKENS), "x-sim-latency-scale": "0.3"}
BURST = 24


def _worst(price_in: str, price_out: str) -> Decimal:
    return cost_of(
        input_tokens=estimate_prompt_tokens(PROMPT),
        output_tokens=MAX_TOKENS,
        cached_tokens=0,
        input_price=Decimal(price_in),
        output_price=Decimal(price_out),
        cached_input_price=Decimal(price_in),
    ).total


CHEAP = ("1", "2")
PRICEY = ("30", "60")


def _spend_in_a_burst(demo, model: str, *, limit: Decimal) -> tuple[Decimal, int]:
    budget_services.budget_create(organization=demo.org, scope="key", scope_id=demo.key.id, amount=limit)
    budget_sync()

    def one(_):
        return chat(demo, model, messages=PROMPT, max_tokens=MAX_TOKENS, response_format={"type": "json_object"})

    with ThreadPoolExecutor(max_workers=BURST) as pool:
        responses = list(pool.map(one, range(BURST)))
    assert {r.status_code for r in responses} <= {200, 429}, [
        r.text for r in responses if r.status_code not in (200, 429)
    ]
    refused = [r for r in responses if r.status_code == 429]
    assert refused, "the burst is larger than the budget"
    assert all(r.json()["error"]["code"] == "budget_exceeded" for r in refused)
    ids = [r.headers["x-request-id"] for r in responses]
    wait_until(lambda: UsageRecord.objects.filter(request_id__in=ids).count() == len(ids))
    spent = sum(UsageRecord.objects.filter(request_id__in=ids).values_list("cost", flat=True), Decimal(0))
    return spent, BURST - len(refused)


def _cards(prefix: str):
    cheap = model_card(f"{prefix}-cheap", input_price=CHEAP[0], output_price=CHEAP[1])
    pricey = model_card(f"{prefix}-pricey", input_price=PRICEY[0], output_price=PRICEY[1])
    return cheap, pricey


def test_a_fallback_to_a_pricier_model_cannot_overspend(demo, store):
    cheap, pricey = _cards("fb")
    failing = sim_deployment(cheap, "fb-cheap@a", {"x-sim-fault": "500", **ALWAYS_FULL})
    rescue = sim_deployment(pricey, "fb-pricey@a", ALWAYS_FULL)
    reset_state(failing, rescue)
    policy(
        demo.org,
        demo.owner,
        routes=[
            {
                "name": "primary",
                "targets": [{"deployment": failing.name}],
                "fallbacks": [{"when": "any", "route": "rescue"}],
            },
            {"name": "rescue", "targets": [{"model": pricey.name}]},
        ],
    )
    limit = _worst(*PRICEY) * 4
    spent, served = _spend_in_a_burst(demo, "primary", limit=limit)
    assert served >= 1
    assert spent <= limit + _worst(*PRICEY)


def test_a_weighted_route_mixing_two_models_cannot_overspend(demo, store):
    cheap, pricey = _cards("mix")
    first = sim_deployment(cheap, "mix-cheap@a", ALWAYS_FULL)
    second = sim_deployment(pricey, "mix-pricey@a", ALWAYS_FULL)
    reset_state(first, second)
    policy(
        demo.org,
        demo.owner,
        routes=[
            {
                "name": "mixed",
                "strategy": "weighted",
                "targets": [{"model": cheap.name, "weight": 1}, {"model": pricey.name, "weight": 1}],
            }
        ],
    )
    limit = _worst(*PRICEY) * 4
    spent, served = _spend_in_a_burst(demo, "mixed", limit=limit)
    assert served >= 1
    assert spent <= limit + _worst(*PRICEY)


def test_a_cascade_that_calls_every_layer_cannot_overspend(demo, store):
    cheap, pricey = _cards("casc")
    lite = sim_deployment(cheap, "casc-cheap@a", {"x-sim-invalid-json-rate": "1", **ALWAYS_FULL})
    top = sim_deployment(pricey, "casc-pricey@a", ALWAYS_FULL)
    reset_state(lite, top)
    policy(
        demo.org,
        demo.owner,
        routes=[{"name": "escalating", "kind": "cascade", "layers": [{"model": cheap.name}, {"model": pricey.name}]}],
    )
    # Room for four answers from the top layer alone: each request also pays the cheap
    # layer it tried first, so a hold on the top layer's price alone would let four through.
    limit = _worst(*PRICEY) * 4
    spent, served = _spend_in_a_burst(demo, "escalating", limit=limit)
    assert served >= 1
    assert spent <= limit


@pytest.mark.parametrize("shape", ["fallback"])
def test_the_hold_covers_the_priciest_reachable_model(demo, store, shape):
    """The reservation itself names the worst case: a budget that fits one request on the
    cheap model but not one on the pricey fallback refuses up front."""
    cheap, pricey = _cards("up")
    failing = sim_deployment(cheap, "up-cheap@a", {"x-sim-fault": "500", **ALWAYS_FULL})
    sim_deployment(pricey, "up-pricey@a", ALWAYS_FULL)
    reset_state(failing)
    policy(
        demo.org,
        demo.owner,
        routes=[
            {
                "name": "primary",
                "targets": [{"deployment": failing.name}],
                "fallbacks": [{"when": "any", "route": "rescue"}],
            },
            {"name": "rescue", "targets": [{"model": pricey.name}]},
        ],
    )
    budget_services.budget_create(organization=demo.org, scope="key", scope_id=demo.key.id, amount=_worst(*CHEAP) * 3)
    budget_sync()
    response = chat(demo, "primary", messages=PROMPT, max_tokens=MAX_TOKENS)
    assert response.status_code == 429, response.text
    assert response.json()["error"]["code"] == "budget_exceeded"


def test_a_stream_that_outlives_its_hold_lifetime_keeps_its_hold(demo, store, settings):
    """Holds live a short while here (1 s) and streams run longer: the gateway renews the
    holds of running requests (through a slow first token too), so the reaper never frees
    their reservations and requests that arrive meanwhile cannot spend them a second time."""
    import threading
    import time

    import httpx

    settings.GATEHOUSE_BUDGETS = {**settings.GATEHOUSE_BUDGETS, "HOLD_TTL": 1.0, "REAP_INTERVAL": 0.2, "TICK": 0.1}
    card = model_card("long-stream", input_price=PRICEY[0], output_price=PRICEY[1])
    slow = sim_deployment(card, "long-stream@a", {"x-sim-output-tokens": str(MAX_TOKENS), "x-sim-latency-scale": "10"})
    reset_state(slow)
    gateway_sync()
    worst = _worst(*PRICEY)
    budget_services.budget_create(organization=demo.org, scope="key", scope_id=demo.key.id, amount=worst * 2)
    budget_sync()
    streamed: list[tuple[int, float]] = []

    def stream_one() -> None:
        started = time.monotonic()
        with httpx.stream(
            "POST",
            demo.base_url + "/chat/completions",
            json={"model": card.name, "messages": PROMPT, "max_tokens": MAX_TOKENS, "stream": True},
            headers={"authorization": f"Bearer {demo.secret}"},
            timeout=60,
        ) as response:
            for _ in response.iter_lines():
                pass
            streamed.append((response.status_code, time.monotonic() - started))

    threads = [threading.Thread(target=stream_one) for _ in range(2)]
    for thread in threads:
        thread.start()
    time.sleep(2.5)  # past the hold lifetime and several reaper sweeps, the streams still running
    assert any(thread.is_alive() for thread in threads), ("the streams must outlast the hold lifetime", streamed)
    late = [chat(demo, card.name, messages=PROMPT, max_tokens=MAX_TOKENS) for _ in range(2)]
    for thread in threads:
        thread.join(60)
    assert [status for status, _ in streamed] == [200, 200]
    assert all(seconds > 2.5 for _, seconds in streamed)
    assert [r.status_code for r in late] == [429, 429], (streamed, [r.text for r in late])
    ids = [r.headers["x-request-id"] for r in late]
    wait_until(lambda: UsageRecord.objects.filter(request_id__in=ids).count() == 2)
    wait_until(lambda: UsageRecord.objects.filter(key_id=demo.key.id, stream=True).count() == 2)
    spent = sum(UsageRecord.objects.filter(key_id=demo.key.id).values_list("cost", flat=True), Decimal(0))
    assert spent <= worst * 2
