"""Fixtures of the console tests."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from console import services
from console.models import Role
from tests.console.signin_fixtures import PASSWORD, user


@pytest.fixture
def orgs(db):
    owner = user("acme-owner", PASSWORD)
    admin = user("acme-admin", PASSWORD)
    member = user("acme-member")
    acme = services.organization_create(name="Acme", owner=owner)
    services.membership_set(organization=acme, user=admin, role=Role.ADMIN, actor=owner)
    services.membership_set(organization=acme, user=member, role=Role.MEMBER, actor=owner)
    rival_owner = user("rival-owner", PASSWORD, email="secret.person@rival.example")
    rival = services.organization_create(name="Rival", owner=rival_owner)
    return SimpleNamespace(acme=acme, owner=owner, admin=admin, member=member, rival=rival, rival_owner=rival_owner)
