"""Fixtures for the management API: two organizations built through the services,
each with one user per role, a team, keys, an own provider with a secret and a
deployment, so every test can also try to reach the other organization."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

PASSWORD = "pw-Api-tests-123"


@dataclass
class World:
    """One organization and everything in it."""

    org: object
    owner: object
    admin: object
    finance: object
    member: object
    team: object
    member_key: object
    admin_key: object
    provider: object
    provider_secret: str
    deployment: object
    memberships: dict = field(default_factory=dict)


def client_for(user, org=None) -> APIClient:
    """A signed-in console session acting in `org` (by the organization header)."""
    client = APIClient()
    client.force_login(user)
    if org is not None:
        client.credentials(HTTP_X_GATEHOUSE_ORGANIZATION=org.slug)
    return client


def body_text(response) -> str:
    return response.content.decode()


@pytest.fixture
def models(db):
    """Two priced cards in the global registry."""
    from providers import services

    chat, _ = services.model_card_upsert(
        name="gpt-test",
        vendor="openai",
        tier="mid",
        input_price=Decimal("0.15"),
        output_price=Decimal("0.60"),
        capabilities=["chat", "streaming"],
    )
    embed, _ = services.model_card_upsert(
        name="embed-test", vendor="openai", tier="edge", input_price=Decimal("0.02"), capabilities=["embeddings"]
    )
    return {"chat": chat, "embed": embed}


def world_build(suffix: str, models: dict) -> World:
    from console import services
    from console.models import Membership, Role
    from providers import services as provider_services

    owner = services.user_create(username=f"owner-{suffix}", email=f"owner@{suffix}.test", password=PASSWORD)
    org = services.organization_create(name=f"Org {suffix.upper()}", slug=f"org-{suffix}", owner=owner)
    users = {"owner": owner}
    for role in (Role.ADMIN, Role.FINANCE, Role.MEMBER):
        user = services.user_create(username=f"{role}-{suffix}", email=f"{role}@{suffix}.test", password=PASSWORD)
        services.membership_set(organization=org, user=user, role=role, actor=owner)
        users[role.value] = user
    team = services.team_create(organization=org, name=f"Research {suffix}", actor=owner)
    services.team_member_add(team=team, user=users["member"], actor=owner)
    member_key = services.api_key_create(
        organization=org, name=f"member app {suffix}", team=team, user=users["member"], actor=owner
    ).key
    admin_key = services.api_key_create(organization=org, name=f"admin app {suffix}", user=users["admin"]).key
    secret = f"sk-upstream-{suffix}-{uuid.uuid4().hex}"
    provider = provider_services.provider_create(
        name=f"openai-{suffix}",
        kind="openai",
        base_url="https://api.example.test/v1",
        secret=secret,
        organization=org,
        actor=owner,
    )
    deployment = provider_services.deployment_create(model=models["chat"], provider=provider, actor=owner)
    memberships = {m.role: m for m in Membership.objects.filter(organization=org)}
    return World(
        org=org,
        owner=owner,
        admin=users["admin"],
        finance=users["finance"],
        member=users["member"],
        team=team,
        member_key=member_key,
        admin_key=admin_key,
        provider=provider,
        provider_secret=secret,
        deployment=deployment,
        memberships=memberships,
    )


@pytest.fixture
def a(models) -> World:
    return world_build("a", models)


@pytest.fixture
def b(models) -> World:
    return world_build("b", models)


@pytest.fixture
def shared_provider(db, models):
    """A provider every organization sees (operator-managed), with a deployment."""
    from providers import services

    provider = services.provider_create(
        name="shared-sim", kind="openai", base_url="sim://openai/v1", secret="sk-shared-plaintext"
    )
    deployment = services.deployment_create(model=models["embed"], provider=provider, name="embed@shared")
    return provider, deployment


T0 = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


def usage_write(**events) -> None:
    """Write usage records the way the gateway does: buffer, then one batch flush."""
    from budgets.usage import UsageEvent, UsageSink

    sink = UsageSink(journal_dir=None, buffer_max=10_000)
    for request_id, values in events.items():
        sink.add(UsageEvent(request_id=request_id, **values))
    sink.flush()


def usage_event(world: World, *, at: datetime, key=None, cost: str = "0", status: int = 200, **extra) -> dict:
    key = key if key is not None else world.member_key
    values = {
        "created_at": at,
        "organization_id": world.org.id,
        "endpoint": "chat",
        "status_code": status,
        "team_id": key.team_id,
        "user_id": key.user_id,
        "key_id": key.id,
        "model_requested": "gpt-test",
        "model_used": "gpt-test" if status < 400 else "",
        "input_tokens": 100,
        "output_tokens": 20,
        "cost": Decimal(cost),
    }
    values.update(extra)
    return values


@pytest.fixture
def usage(transactional_db, a, b):
    """Usage records of both organizations; returns their request ids by name."""
    ids = {name: f"req-{name}-{uuid.uuid4().hex[:8]}" for name in ("a1", "a2", "a3", "a4", "a5", "b1")}
    usage_write(
        **{
            ids["a1"]: usage_event(a, at=T0, cost="0.1000000001", tags=["alpha", "beta"], workflow="triage"),
            ids["a2"]: usage_event(a, at=T0 + timedelta(hours=1), cost="0.2000000002", tags=["Alpha"]),
            ids["a3"]: usage_event(
                a,
                at=T0 + timedelta(days=1),
                key=a.admin_key,
                cost="0.0000000007",
                endpoint="embeddings",
                model_requested="embed-test",
                model_used="embed-test",
            ),
            ids["a4"]: usage_event(
                a, at=T0 + timedelta(days=1, hours=2), status=429, error_type="rate_limit", workflow="triage"
            ),
            ids["a5"]: usage_event(a, at=T0 + timedelta(days=2), cost="1.5", input_tokens=1000, output_tokens=500),
            ids["b1"]: usage_event(b, at=T0, key=b.member_key, cost="9.99", tags=["alpha"]),
        }
    )
    return ids


def json_of(response):
    return json.loads(response.content)


@pytest.fixture
def operator(a):
    """A platform operator (Django staff) who is also an owner of org A: the catalog is theirs."""
    a.owner.is_staff = True
    a.owner.save(update_fields=["is_staff"])
    return a.owner
