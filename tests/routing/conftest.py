from __future__ import annotations

from dataclasses import dataclass

import pytest

from console import services as console_services
from providers import services as provider_services


@dataclass
class Org:
    org: object
    owner: object
    admin: object
    member: object
    deployment: object


@pytest.fixture
def org(db) -> Org:
    owner = console_services.user_create(username="rt-owner", password="pw-Owner-123")
    admin = console_services.user_create(username="rt-admin", password="pw-Admin-123")
    member = console_services.user_create(username="rt-member", password="pw-Member-123")
    organization = console_services.organization_create(name="Routing Org", owner=owner)
    console_services.membership_set(organization=organization, user=admin, role="admin")
    console_services.membership_set(organization=organization, user=member, role="member")
    card, _ = provider_services.model_card_upsert(
        name="rt-model", vendor="test", input_price="1", output_price="2", capabilities=["chat"]
    )
    provider_services.model_card_upsert(
        name="rt-big", vendor="test", input_price="5", output_price="10", capabilities=["chat"]
    )
    provider = provider_services.provider_create(name="rt-sim", kind="openai", base_url="sim://openai/v1", secret="x")
    deployment = provider_services.deployment_create(model=card, provider=provider, name="rt-model@sim")
    return Org(organization, owner, admin, member, deployment)
