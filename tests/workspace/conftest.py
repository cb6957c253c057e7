"""Workspace test helpers: turns run through a short-lived gateway, as a worker or a
synchronous page would, against the simulator of the `demo` organization."""

from __future__ import annotations

import pytest


def turn(**kwargs):
    """One whole turn through the real pipeline; its events."""
    from workspace.turns import turn_run, with_gateway

    return with_gateway(None, lambda gateway: turn_run(gateway, **kwargs))


def usage_record(request_id: str):
    from budgets.models import UsageRecord

    return UsageRecord.objects.filter(request_id=request_id).first()


@pytest.fixture
def member(demo):
    """A plain member of the demo organization, in its team."""
    from console import services as console_services

    user = console_services.user_create(username="mia", email="mia@example.com", password="pw-Member-123")
    console_services.membership_set(organization=demo.org, user=user, role="member", actor=demo.owner)
    console_services.team_member_add(team=demo.team, user=user, actor=demo.owner)
    return user
