"""Routing state shared between gateway processes through Redis: an ejection caused by
one process is honoured by another that never saw the failures."""

from __future__ import annotations

import os
import time

import httpx
import pytest

from routing import services as routing_services
from tests.conftest import free_port, gateway_sync, server_gateway
from tests.gateway.test_processes import start_gateway
from tests.routing.support import model_card, policy, sim_deployment

pytestmark = pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="REDIS_URL is not set")


@pytest.mark.django_db(transaction=True)
def test_cooldown_is_shared_between_two_gateway_processes(demo):
    card = model_card("shared-model")
    broken = sim_deployment(card, "shared@broken", {"x-sim-fault": "503"})
    healthy = sim_deployment(card, "shared@healthy")
    routing_services.deployment_policy_set(deployment=broken, failure_threshold=2, failure_window=60, cooldown=60)
    policy(
        demo.org,
        demo.owner,
        routes=[
            {
                "name": "shared",
                "targets": [{"deployment": broken.name, "weight": 1000}, {"deployment": healthy.name}],
            }
        ],
    )
    gateway_sync()
    state = server_gateway().state
    assert state.name == "redis"
    state.reset([broken.id, healthy.id])
    ports = free_port(), free_port()
    servers = [start_gateway(port) for port in ports]
    headers = {"authorization": f"Bearer {demo.secret}"}
    body = {"model": "shared", "messages": [{"role": "user", "content": "hi"}]}
    try:
        first, second = (f"http://127.0.0.1:{port}/v1/chat/completions" for port in ports)
        # Requests through the first process until its failures eject the deployment for every process.
        for _ in range(10):
            assert httpx.post(first, json=body, headers=headers, timeout=20).status_code == 200
            time.sleep(0.05)  # queued updates reach Redis within milliseconds
            if state.inspect([broken.id])[broken.id].opened:
                break
        assert state.inspect([broken.id])[broken.id].opened
        # The second process never saw a failure, yet skips the broken deployment.
        answers = [httpx.post(second, json=body, headers=headers, timeout=20) for _ in range(6)]
        assert [r.status_code for r in answers] == [200] * 6
        assert {r.headers["x-gatehouse-attempts"] for r in answers} == {"1"}
        assert {r.headers["x-gatehouse-deployment"] for r in answers} == {healthy.name}
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=20)
        state.reset()  # this installation's keys only (prefix + namespace)
