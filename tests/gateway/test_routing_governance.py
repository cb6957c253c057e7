"""Governance as the gateway sees it: a change goes live through the change feed,
four-eyes proposals do nothing until approved, and a rollback restores routing."""

from __future__ import annotations

import time

import pytest

from console.services import membership_set, user_create
from routing import services as routing_services
from tests.conftest import usage_wait
from tests.routing.support import chat, model_card, policy, reset_state, sim_deployment


def wait_for(predicate, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the gateway did not pick up the change"
        time.sleep(0.05)


@pytest.fixture
def two(demo):
    card = model_card("gov-model")
    first, second = sim_deployment(card, "gov@first"), sim_deployment(card, "gov@second")
    reset_state(first, second)
    return first, second


def route_to(deployment) -> dict:
    return {"name": "fast", "targets": [{"deployment": deployment.name}]}


def test_rollback_restores_an_earlier_version_through_the_change_feed(demo, two):
    first, second = two
    v1 = policy(demo.org, demo.owner, routes=[route_to(first)])
    assert chat(demo, "fast").headers["x-gatehouse-deployment"] == first.name
    v2 = routing_services.route_put(organization=demo.org, actor=demo.owner, route=route_to(second), replaces="fast")
    assert v2.number == v1.number + 1 and v2.state == "live"
    # No explicit sync: the gateway's change-feed poll picks the new version up.
    wait_for(lambda: chat(demo, "fast").headers["x-gatehouse-deployment"] == second.name)
    v3 = routing_services.policy_rollback(version=v1, actor=demo.owner)
    assert v3.rollback_of == v1.number and v3.document == v1.document
    wait_for(lambda: chat(demo, "fast").headers["x-gatehouse-deployment"] == first.name)
    response = chat(demo, "fast")
    assert response.headers["x-gatehouse-policy-version"] == str(v3.number)
    assert usage_wait(response.headers["x-request-id"]).metadata["routing"]["policy_version"] == v3.number


def test_four_eyes_change_waits_for_a_second_admin(demo, two):
    first, second = two
    policy(demo.org, demo.owner, routes=[route_to(first)], settings={"require_approval": True})
    proposal = routing_services.route_put(
        organization=demo.org, actor=demo.owner, route=route_to(second), replaces="fast"
    )
    assert proposal.state == "pending"
    time.sleep(0.6)  # two poll intervals: nothing changes while pending
    assert chat(demo, "fast").headers["x-gatehouse-deployment"] == first.name
    admin = user_create(username="second-admin", password="pw-Admin-123")
    membership_set(organization=demo.org, user=admin, role="admin")
    routing_services.policy_approve(version=proposal, actor=admin)
    wait_for(lambda: chat(demo, "fast").headers["x-gatehouse-deployment"] == second.name)
