"""Strategies as pure functions: distributions within stated bounds, health-driven order."""

from __future__ import annotations

import random
from collections import Counter
from decimal import Decimal

from providers.adapters.base import Target
from providers.snapshot import DeploymentInfo, ModelInfo, Price
from routing.engine import strategies
from routing.engine.snapshot import Candidate
from routing.engine.state import DEFAULT_BREAKER, Health


def candidate(ident: int, *, weight: int = 1, price: tuple[str, str] = ("1", "2")) -> Candidate:
    model = ModelInfo(
        id=ident,
        name=f"m{ident}",
        vendor="v",
        tier="mid",
        context_window=128_000,
        max_output_tokens=4096,
        capabilities=frozenset({"chat"}),
        lifecycle="active",
        price=Price(Decimal(price[0]), Decimal(price[1]), Decimal(0)),
        created=0,
        deployments=(),
    )
    deployment = DeploymentInfo(
        id=ident,
        name=f"d{ident}",
        model_name=model.name,
        provider_name="p",
        provider_kind="openai",
        organization_id=None,
        weight=weight,
        target=Target("openai", "http://x", "", model.name),
    )
    return Candidate(deployment, model, weight, DEFAULT_BREAKER, float(price[0]), float(price[1]))


def test_weighted_first_choice_is_proportional_to_weight():
    rng = random.Random(7)
    a, b, c = candidate(1, weight=6), candidate(2, weight=3), candidate(3, weight=1)
    firsts = Counter(strategies.weighted([a, b, c], rng)[0].id for _ in range(20_000))
    assert abs(firsts[1] / 20_000 - 0.6) < 0.02
    assert abs(firsts[2] / 20_000 - 0.3) < 0.02
    assert abs(firsts[3] / 20_000 - 0.1) < 0.015


def test_weighted_never_leads_with_a_zero_weight_candidate():
    a, b = candidate(1, weight=0), candidate(2)
    assert all(strategies.weighted([a, b])[0].id == 2 for _ in range(100))


def test_round_robin_is_exact_and_weighted():
    a, b = candidate(1, weight=2), candidate(2, weight=1)
    leaders = [strategies.round_robin([a, b], ticket)[0].id for ticket in range(300)]
    assert Counter(leaders) == {1: 200, 2: 100}
    assert [c.id for c in strategies.round_robin([a, b], 2)] == [2, 1]  # the rest follow as retries


def test_least_latency_orders_by_moving_average_and_explores():
    fast, slow, new = candidate(1), candidate(2), candidate(3)
    health = {1: Health(latency=0.5), 2: Health(latency=9.0)}
    order = strategies.least_latency([slow, fast, new], health, stream=False, exploration=0.0)
    assert [c.id for c in order] == [3, 1, 2]  # never measured first, then fastest
    health = {1: Health(latency=0.5), 2: Health(latency=9.0), 3: Health(latency=4.0)}
    rng = random.Random(3)
    firsts = Counter(
        strategies.least_latency([slow, fast, new], health, stream=False, exploration=0.2, rng=rng)[0].id
        for _ in range(5000)
    )
    assert firsts[1] > 4000 and firsts[2] > 100  # the slow one keeps being sampled


def test_least_latency_uses_ttft_for_streams():
    a, b = candidate(1), candidate(2)
    health = {1: Health(latency=0.1, ttft=900.0), 2: Health(latency=5.0, ttft=100.0)}
    assert strategies.least_latency([a, b], health, stream=True, exploration=0)[0].id == 2
    assert strategies.least_latency([a, b], health, stream=False, exploration=0)[0].id == 1


def test_least_busy_and_lowest_cost():
    a, b = candidate(1, price=("5", "15")), candidate(2, price=("0.1", "0.4"))
    assert strategies.least_busy([a, b], {1: Health(inflight=0), 2: Health(inflight=3)})[0].id == 1
    assert strategies.lowest_cost([a, b], prompt_tokens=1000, output_tokens=100)[0].id == 2


def test_backoff_is_exponential_with_full_jitter_and_capped():
    from routing.pipeline.call import backoff_delay

    for retry in range(1, 8):
        ceiling = min(2.0, 0.05 * 2 ** (retry - 1))
        delays = [backoff_delay(retry, base=0.05, cap=2.0) for _ in range(500)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8 and min(delays) < ceiling * 0.2  # jittered over the whole range
    assert backoff_delay(1, base=0.05, cap=2.0, retry_after=1.5) >= 1.5  # a short Retry-After is honoured
    assert backoff_delay(1, base=0.05, cap=2.0, retry_after=30) <= 0.05  # a long one is not waited for
