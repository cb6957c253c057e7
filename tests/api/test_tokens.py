"""Admin tokens: issued once, act as their user in their organization only, and a
revoked token is refused with 401."""

from __future__ import annotations

import hashlib

import pytest
from rest_framework.test import APIClient

from console import services
from console.models import AdminToken
from tests.api.conftest import client_for

pytestmark = pytest.mark.django_db


def bearer(secret: str, **headers) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}", **headers)
    return client


def test_owner_issues_a_token_whose_secret_is_shown_once(a):
    client = client_for(a.owner, a.org)
    response = client.post("/api/v1/tokens/", {"name": "terraform"}, format="json")
    assert response.status_code == 201
    data = response.json()
    assert data["secret"].startswith("gha-") and data["status"] == "active"
    token = AdminToken.objects.get(id=data["id"])
    assert token.secret_hash == hashlib.sha256(data["secret"].encode()).hexdigest()
    assert (token.user_id, token.organization_id) == (a.owner.id, a.org.id)
    listed = client.get("/api/v1/tokens/")
    assert listed.status_code == 200 and data["secret"] not in listed.content.decode()
    assert token.secret_hash not in listed.content.decode()


def test_a_token_acts_as_its_user_in_its_organization(a, b):
    services.membership_set(organization=b.org, user=a.admin, role="admin")
    issued = services.admin_token_create(organization=a.org, user=a.admin, name="ci")
    # Even when asked for another organization of the same user, the token stays in its own.
    client = bearer(issued.secret, HTTP_X_GATEHOUSE_ORGANIZATION=b.org.slug)
    teams = client.get("/api/v1/teams/")
    assert teams.status_code == 200
    assert [t["id"] for t in teams.json()["results"]] == [a.team.id]
    assert [o["id"] for o in client.get("/api/v1/organizations/").json()["results"]] == [a.org.id]
    assert client.get(f"/api/v1/teams/{b.team.id}/").status_code == 404
    created = client.post("/api/v1/teams/", {"name": "Made by token"}, format="json")
    assert created.status_code == 201
    from audit.models import AuditEvent

    assert AuditEvent.objects.filter(action="team.create", actor=a.admin.username, target="Made by token").exists()


def test_a_token_carries_its_users_role(a):
    issued = services.admin_token_create(organization=a.org, user=a.finance, name="reporting")
    client = bearer(issued.secret)
    assert client.get("/api/v1/usage/summary/").status_code == 200
    assert client.get("/api/v1/keys/").status_code == 403


def test_revoked_and_unknown_tokens_get_401(a):
    owner = client_for(a.owner, a.org)
    issued = owner.post("/api/v1/tokens/", {"name": "short-lived"}, format="json").json()
    client = bearer(issued["secret"])
    assert client.get("/api/v1/models/").status_code == 200

    revoked = owner.post(f"/api/v1/tokens/{issued['id']}/revoke/")
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    assert AdminToken.objects.get(id=issued["id"]).revoked_at is not None
    response = client.get("/api/v1/models/")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert bearer("gha-not-a-real-token").get("/api/v1/models/").status_code == 401


def test_a_token_of_a_removed_member_no_longer_works(a):
    issued = services.admin_token_create(organization=a.org, user=a.admin, name="ci")
    services.membership_remove(membership=a.memberships["admin"])
    assert bearer(issued.secret).get("/api/v1/models/").status_code == 403


def test_only_owners_and_admins_manage_tokens(a):
    for user in (a.finance, a.member):
        client = client_for(user, a.org)
        assert client.post("/api/v1/tokens/", {"name": "x"}, format="json").status_code == 403
        assert client.get("/api/v1/tokens/").status_code == 403
    assert not AdminToken.objects.filter(name="x").exists()
