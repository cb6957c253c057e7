"""Reliability over real HTTP with the simulator injecting faults: retries with
backoff, moving on to the next deployment, outlier ejection that really skips a
failing deployment and probes it again, panic mode, and fallback chains by error
class. Time in the routing state is moved with its clock, never slept through."""

from __future__ import annotations

import time
from datetime import timedelta

import httpx
import pytest

from routing import services as routing_services
from tests.conftest import gateway_sync, server_gateway, usage_wait
from tests.routing.support import (
    chat,
    model_card,
    outcomes_written,
    policy,
    provider_headers,
    reset_state,
    routing_clock,
    sim_deployment,
)


def breaker(deployment, *, threshold=2, window=60.0, cooldown=1.5):
    routing_services.deployment_policy_set(
        deployment=deployment, failure_threshold=threshold, failure_window=window, cooldown=cooldown
    )
    gateway_sync()


@pytest.fixture
def pair(demo):
    """A route preferring a broken deployment (weight 1000 to 1) over a healthy one."""
    card = model_card("pair-model")
    broken = sim_deployment(card, "pair-broken", {"x-sim-fault": "503"})
    healthy = sim_deployment(card, "pair-healthy")
    reset_state(broken, healthy)
    policy(
        demo.org,
        demo.owner,
        routes=[
            {
                "name": "pair",
                "targets": [{"deployment": broken.name, "weight": 1000}, {"deployment": healthy.name}],
            }
        ],
    )
    return broken, healthy


def test_retryable_failure_moves_on_and_ejection_then_skips_the_deployment(demo, pair):
    broken, healthy = pair
    breaker(broken, threshold=2, cooldown=30)
    with routing_clock():
        first = [chat(demo, "pair") for _ in range(2)]
        assert [r.status_code for r in first] == [200, 200]
        assert [r.headers["x-gatehouse-attempts"] for r in first] == ["2", "2"]
        record = usage_wait(first[0].headers["x-request-id"])
        trail = record.metadata["attempt_trail"]
        assert trail[0]["deployment"] == broken.name and trail[0]["status"] == 503
        outcomes_written()
        # Two requests, both failed: the error rate ejects the broken deployment.
        later = [chat(demo, "pair") for _ in range(10)]
        assert all(r.headers["x-gatehouse-attempts"] == "1" for r in later)
        assert {r.headers["x-gatehouse-deployment"] for r in later} == {healthy.name}
        state = server_gateway().state
        assert state.inspect([broken.id])[broken.id].status(state.now()) == "ejected"
        record = usage_wait(later[-1].headers["x-request-id"])
        assert broken.name in record.metadata["routing"]["ejected"]
        assert "panic" not in record.metadata["routing"]


def test_probe_after_ejection_returns_the_deployment_once_it_recovers(demo, pair):
    broken, healthy = pair
    breaker(broken, threshold=2, cooldown=30)
    state = server_gateway().state
    with routing_clock() as clock:
        for _ in range(2):
            chat(demo, "pair")
        outcomes_written()
        clock.advance(timedelta(seconds=31))
        # Ejection over and still broken: one probe fails and it is ejected again, for longer.
        probe = chat(demo, "pair")
        assert probe.status_code == 200 and probe.headers["x-gatehouse-attempts"] == "2"
        assert usage_wait(probe.headers["x-request-id"]).metadata["routing"]["probes"] == [broken.name]
        outcomes_written()
        assert chat(demo, "pair").headers["x-gatehouse-attempts"] == "1"
        health = state.inspect([broken.id])[broken.id]
        assert health.ejections == 2 and health.open_until - state.now() == pytest.approx(60, abs=1)
        provider_headers(broken, {})  # it recovers
        clock.advance(timedelta(seconds=31))
        assert chat(demo, "pair").headers["x-gatehouse-attempts"] == "1"  # still out: the second ejection is longer
        clock.advance(timedelta(seconds=30))
        recovered = chat(demo, "pair")
        assert recovered.headers["x-gatehouse-deployment"] == broken.name
        outcomes_written()
        assert state.inspect([broken.id])[broken.id].status(state.now()) == "healthy"
        counts = {chat(demo, "pair").headers["x-gatehouse-deployment"] for _ in range(5)}
        assert counts == {broken.name}


def test_single_deployment_is_retried_with_backoff_on_429(demo):
    card = model_card("limited-model")
    limited = sim_deployment(card, "limited@a", {"x-sim-fault": "429"})
    reset_state(limited)
    breaker(limited, threshold=50)
    started = time.monotonic()
    response = chat(demo, "limited-model")
    assert response.status_code == 429
    assert response.headers["x-gatehouse-attempts"] == "3"
    assert time.monotonic() - started < 3
    trail = usage_wait(response.headers["x-request-id"]).metadata["attempt_trail"]
    assert [t["deployment"] for t in trail] == ["limited@a"] * 3


@pytest.mark.parametrize(("fault", "status", "attempts"), [("400", 400, "1"), ("401", 200, "2")])
def test_non_retryable_errors_are_not_retried_on_the_same_deployment(demo, fault, status, attempts):
    card = model_card(f"nr-{fault}")
    bad = sim_deployment(card, f"nr-{fault}@bad", {"x-sim-fault": fault})
    good = sim_deployment(card, f"nr-{fault}@good")
    reset_state(bad, good)
    policy(
        demo.org,
        demo.owner,
        routes=[
            {
                "name": f"nr-{fault}-route",
                "targets": [{"deployment": bad.name, "weight": 10_000}, {"deployment": good.name, "weight": 1}],
            }
        ],
    )
    response = chat(demo, f"nr-{fault}-route")
    # 400: the request's own fault, final. 401: the deployment's credentials, so the next deployment answers.
    assert response.status_code == status
    assert response.headers["x-gatehouse-attempts"] == attempts
    trail = usage_wait(response.headers["x-request-id"]).metadata["attempt_trail"]
    assert [t["deployment"] for t in trail] == [bad.name]


@pytest.mark.parametrize(
    ("fault", "on"), [("context_length", "context_length"), ("content_filter", "content_policy"), ("500", "any")]
)
def test_fallback_chain_by_error_class(demo, fault, on):
    small = model_card(f"fb-small-{on}")
    large = model_card(f"fb-large-{on}")
    other = model_card(f"fb-other-{on}")
    failing = sim_deployment(small, f"fb-small-{on}@a", {"x-sim-fault": fault})
    rescue = sim_deployment(large, f"fb-large-{on}@a")
    wrong = sim_deployment(other, f"fb-other-{on}@a")
    reset_state(failing, rescue, wrong)
    breaker(failing, threshold=100)
    fallbacks = [{"when": on, "route": "rescue"}]
    if on != "any":
        fallbacks.append({"when": "any", "route": "wrong"})
    policy(
        demo.org,
        demo.owner,
        routes=[
            {"name": "primary", "targets": [{"deployment": failing.name}], "fallbacks": fallbacks},
            {"name": "rescue", "targets": [{"model": large.name}]},
            {"name": "wrong", "targets": [{"model": other.name}]},
        ],
    )
    response = chat(demo, "primary")
    assert response.status_code == 200, response.text
    assert response.headers["x-gatehouse-deployment"] == rescue.name
    assert response.headers["x-gatehouse-route"] == "rescue"
    record = usage_wait(response.headers["x-request-id"])
    assert record.model_requested == "primary" and record.model_used == large.name
    assert record.metadata["routing"]["fallbacks"] == [{"from": "primary", "to": "rescue", "reason": on}]
    assert any(step.get("fallback") == "rescue" for step in record.metadata["attempt_trail"])


def test_stream_falls_back_before_the_first_byte(demo, pair):
    broken, healthy = pair
    breaker(broken, threshold=100)
    body = {"model": "pair", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    with httpx.stream(
        "POST",
        demo.base_url + "/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {demo.secret}"},
        timeout=10,
    ) as response:
        assert response.status_code == 200
        assert response.headers["x-gatehouse-deployment"] == healthy.name
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]" and not any('"error"' in line for line in lines)


def test_a_route_whose_every_deployment_is_ejected_routes_anyway_in_panic_mode(demo):
    card = model_card("cold-model")
    only = sim_deployment(card, "cold@a", {"x-sim-fault": "500"})
    spare = sim_deployment(model_card("spare-model"), "spare@a")
    reset_state(only, spare)
    breaker(only, threshold=1, cooldown=30)
    policy(
        demo.org,
        demo.owner,
        routes=[
            {"name": "cold", "targets": [{"deployment": only.name}]},
            {
                "name": "cold-with-spare",
                "targets": [{"deployment": only.name}],
                "fallbacks": [{"when": "any", "route": "spare-model"}],
            },
        ],
    )
    with routing_clock():
        first = chat(demo, "cold")
        assert first.status_code == 502, first.text
        outcomes_written()
        state = server_gateway().state
        assert state.inspect([only.id])[only.id].status(state.now()) == "ejected"
        # Ejected, but the only one: it is tried anyway (the upstream's own error, not a 503).
        response = chat(demo, "cold")
        assert response.status_code == 502 and response.json()["error"]["code"] == "upstream_server_error"
        routing = usage_wait(response.headers["x-request-id"]).metadata["routing"]
        assert routing["panic"] is True and routing["ejected"] == [only.name]
        rescued = chat(demo, "cold-with-spare")
        assert rescued.status_code == 200 and rescued.headers["x-gatehouse-deployment"] == "spare@a"
