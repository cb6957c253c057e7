"""Scheduled health probes: a deployment that fails its probe is ejected before users
hit it, shown on the health page, and returns once a probe succeeds again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from django.urls import reverse

from providers.models import Deployment
from providers.services import deployment_create, deployment_update
from routing.models import DeploymentProbe
from routing.probe import probe_round
from tests.conftest import gateway_sync, server_gateway, sim_control_headers


@pytest.fixture
def control(gateway_server):
    url = f"{gateway_server.url}/sim/_control"
    headers = sim_control_headers()
    yield lambda **values: httpx.post(url, json=values, headers=headers, timeout=10).raise_for_status()
    httpx.delete(url, headers=headers, timeout=10)


def _round(gateway):
    return gateway.call_soon(lambda: probe_round(gateway, timeout=5.0), timeout=30)


def test_a_failing_probe_ejects_the_deployment_and_a_passing_one_returns_it(demo, control, client):
    gateway = server_gateway()
    claude = Deployment.objects.get(name="claude-sonnet-4-6@sim-anthropic")
    # A second deployment of the same model under another upstream id (the fault is injected by id).
    deployment_create(
        model=claude.model, provider=claude.provider, name="claude-backup", upstream_model="claude-sonnet-4-6-backup"
    )
    gateway_sync()
    others = list(Deployment.objects.exclude(pk=claude.pk).values_list("pk", flat=True))
    gateway.state.reset()
    with gateway.clock.frozen(datetime.now(UTC)) as clock:
        _failing_then_back(gateway, demo, control, client, claude, others, clock)


def _failing_then_back(gateway, demo, control, client, claude, others, clock) -> None:
    try:
        control(model="claude-sonnet-4-6", fault="503")
        results = {r.deployment_id: r for r in _round(gateway)}
        assert set(results) == {claude.pk, *others}  # every deployment, embeddings included
        assert results[claude.pk].ok is False and results[claude.pk].status in (503, 529)
        assert all(results[pk].ok for pk in others)
        health = gateway.state.inspect([claude.pk, *others])
        assert health[claude.pk].status(gateway.state.now()) == "ejected"
        assert all(health[pk].status(gateway.state.now()) == "healthy" for pk in others)
        row = DeploymentProbe.objects.get(deployment_id=claude.pk)
        assert row.ok is False and row.failures == 1 and row.error

        # Users' requests never reach the dead deployment: the backup answers at the first attempt.
        for _ in range(6):
            response = httpx.post(
                f"{demo.base_url}/chat/completions",
                json={"model": "claude-sonnet-4-6", "messages": [{"role": "user", "content": "hi"}]},
                headers={"authorization": f"Bearer {demo.secret}"},
                timeout=30,
            )
            assert response.status_code == 200
            assert response.headers["x-gatehouse-deployment"] == "claude-backup"
            assert response.headers["x-gatehouse-attempts"] == "1"

        client.force_login(demo.owner)
        page = client.get(reverse("routing:health")).content.decode()
        assert 'data-probe="failing"' in page and 'data-probe="ok"' in page

        _round(gateway)
        assert DeploymentProbe.objects.get(deployment_id=claude.pk).failures == 2

        # Fixed, and its ejection time is up: the next probe brings it back.
        httpx.delete(f"{demo.base_url[:-3]}/sim/_control", headers=sim_control_headers(), timeout=10)
        clock.advance(timedelta(hours=1))
        results = {r.deployment_id: r for r in _round(gateway)}
        assert results[claude.pk].ok is True
        assert gateway.state.inspect([claude.pk])[claude.pk].status(gateway.state.now()) == "healthy"
        assert DeploymentProbe.objects.get(deployment_id=claude.pk).failures == 0
    finally:
        gateway.state.reset()


def test_a_deployment_that_opted_out_is_not_probed(demo):
    gateway = server_gateway()
    claude = Deployment.objects.get(name="claude-sonnet-4-6@sim-anthropic")
    deployment_update(deployment=claude, health_probe=False)
    gateway_sync()
    try:
        probed = {r.deployment_id for r in _round(gateway)}
        assert claude.pk not in probed and probed
        assert not DeploymentProbe.objects.filter(deployment_id=claude.pk).exists()
    finally:
        gateway.state.reset()


def test_probes_are_off_when_configured(settings):
    from routing.gateway import Gateway

    settings.GATEHOUSE["HEALTH_PROBE"] = {**settings.GATEHOUSE["HEALTH_PROBE"], "enabled": False}
    gateway = Gateway(background=False)
    try:
        assert gateway._tasks == []
    finally:
        gateway.executors.shutdown()
