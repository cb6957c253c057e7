"""Routes and strategies over real HTTP: an alias resolves to deployments, and each
strategy spreads traffic the way it says."""

from __future__ import annotations

import time

import pytest

from tests.conftest import gateway_sync, server_gateway, usage_wait
from tests.routing.support import chat, model_card, policy, provider_headers, reset_state, sim_deployment, spread


@pytest.fixture
def trio(demo):
    card = model_card("trio-model")
    deployments = [sim_deployment(card, f"trio-{letter}") for letter in "abc"]
    reset_state(*deployments)
    gateway_sync()
    return card, deployments


def test_weighted_route_splits_traffic_by_weight(demo, trio):
    _, (a, b, _c) = trio
    policy(
        demo.org,
        demo.owner,
        routes=[
            {
                "name": "fast",
                "strategy": "weighted",
                "targets": [{"deployment": a.name, "weight": 3}, {"deployment": b.name, "weight": 1}],
            }
        ],
    )
    counts = spread(demo, "fast", 400)
    assert set(counts) == {a.name, b.name}
    share = counts[a.name] / 400
    # Expected 0.75; five standard deviations of a binomial(400, 0.75) are about 0.11.
    assert 0.64 <= share <= 0.86, counts


def test_round_robin_route_takes_turns_exactly(demo, trio):
    _, deployments = trio
    policy(
        demo.org,
        demo.owner,
        routes=[
            {
                "name": "rr",
                "strategy": "round_robin",
                "targets": [{"deployment": d.name} for d in deployments],
            }
        ],
    )
    order = [chat(demo, "rr").headers["x-gatehouse-deployment"] for _ in range(30)]
    counts = {d.name: order.count(d.name) for d in deployments}
    assert counts == {d.name: 10 for d in deployments}
    # Strict rotation: no deployment answers twice in a row.
    assert all(first != second for first, second in zip(order, order[1:], strict=False))


def test_route_record_names_route_policy_version_and_alias(demo, trio):
    _, (a, _b, _c) = trio
    version = policy(demo.org, demo.owner, routes=[{"name": "procurement-agent", "targets": [{"deployment": a.name}]}])
    response = chat(demo, "procurement-agent")
    assert response.status_code == 200
    assert response.headers["x-gatehouse-route"] == "procurement-agent"
    assert response.headers["x-gatehouse-policy-version"] == str(version.number)
    record = usage_wait(response.headers["x-request-id"])
    assert record.model_requested == "procurement-agent" and record.model_used == "trio-model"
    assert record.metadata["routing"]["route"] == "procurement-agent"
    assert record.metadata["routing"]["policy_version"] == version.number


def test_plain_model_without_route_keeps_weighted_deployments(demo, trio):
    card, deployments = trio
    counts = spread(demo, card.name, 90)
    assert set(counts) == {d.name for d in deployments}
    assert min(counts.values()) >= 12  # 30 expected each


def test_least_busy_prefers_the_deployment_with_fewest_in_flight(demo, trio):
    _, (a, b, c) = trio
    policy(
        demo.org,
        demo.owner,
        routes=[
            {
                "name": "calm",
                "strategy": "least_busy",
                "targets": [{"deployment": d.name} for d in (a, b, c)],
            }
        ],
    )
    state = server_gateway().state
    for _ in range(5):
        state.begin(a.id)
        state.begin(b.id)
    try:
        time.sleep(0.1)  # a shared backend flushes queued updates within milliseconds
        counts = spread(demo, "calm", 20)
        assert counts == {c.name: 20}
    finally:
        from routing.engine.state import DEFAULT_BREAKER

        for _ in range(5):
            state.end(a.id, ok=None, breaker=DEFAULT_BREAKER)
            state.end(b.id, ok=None, breaker=DEFAULT_BREAKER)


def test_lowest_cost_picks_the_cheapest_model_for_the_request(demo):
    cheap = model_card("cost-cheap", input_price="0.1", output_price="0.4")
    dear = model_card("cost-dear", input_price="5", output_price="15")
    a, b = sim_deployment(dear, "cost-dear@a"), sim_deployment(cheap, "cost-cheap@a")
    reset_state(a, b)
    policy(
        demo.org,
        demo.owner,
        routes=[
            {
                "name": "thrifty",
                "strategy": "lowest_cost",
                "targets": [{"model": "cost-dear"}, {"model": "cost-cheap"}],
            }
        ],
    )
    counts = spread(demo, "thrifty", 10)
    assert counts == {"cost-cheap@a": 10}


def test_least_latency_follows_the_faster_deployment_and_back(demo):
    card = model_card("latency-model")
    quick = sim_deployment(card, "latency-quick")
    slow = sim_deployment(card, "latency-slow", {"x-sim-latency-scale": "0.4"})
    reset_state(quick, slow)
    policy(
        demo.org,
        demo.owner,
        routes=[
            {
                "name": "snappy",
                "strategy": "least_latency",
                "exploration": 0.2,
                "targets": [{"deployment": quick.name}, {"deployment": slow.name}],
            }
        ],
    )
    spread(demo, "snappy", 6)  # both get measured (unmeasured deployments go first)
    counts = spread(demo, "snappy", 40)
    assert counts[quick.name] >= 28, counts

    # The fast one slows down and the slow one recovers: exploration notices and traffic moves.
    provider_headers(quick, {"x-sim-latency-scale": "0.4"})
    provider_headers(slow, {})
    moved = spread(demo, "snappy", 40)
    late = spread(demo, "snappy", 30)
    assert late[slow.name] >= 20, (moved, late)


def test_routes_are_listed_and_retrievable_as_models(demo, trio):
    import openai

    _, (a, _b, _c) = trio
    policy(demo.org, demo.owner, routes=[{"name": "fast", "targets": [{"deployment": a.name}]}])
    client = openai.OpenAI(base_url=demo.base_url, api_key=demo.secret, max_retries=0)
    ids = [m.id for m in client.models.list()]
    assert "fast" in ids and "gpt-4o-mini" in ids and ids == sorted(ids)
    assert client.models.retrieve("fast").owned_by == "gatehouse-route"
