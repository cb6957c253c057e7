"""Roles: owners and admins write everything of their organization; finance reads
usage and models only; members read models and manage only their own keys;
anonymous callers are asked to authenticate."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from console.models import ApiKey, Team
from providers.models import ModelCard
from tests.api.conftest import client_for

pytestmark = pytest.mark.django_db

EVERYTHING = [
    "/api/v1/organizations/",
    "/api/v1/teams/",
    "/api/v1/members/",
    "/api/v1/keys/",
    "/api/v1/tokens/",
    "/api/v1/models/",
    "/api/v1/providers/",
    "/api/v1/deployments/",
    "/api/v1/usage/",
    "/api/v1/usage/summary/",
]

READABLE = {
    "owner": set(EVERYTHING),
    "admin": set(EVERYTHING),
    "finance": {"/api/v1/organizations/", "/api/v1/models/", "/api/v1/usage/", "/api/v1/usage/summary/"},
    "member": {"/api/v1/organizations/", "/api/v1/models/", "/api/v1/keys/"},
}


@pytest.mark.parametrize("role", ["owner", "admin", "finance", "member"])
def test_each_role_reads_exactly_what_it_may(a, role):
    client = client_for(getattr(a, role), a.org)
    for url in EVERYTHING:
        expected = 200 if url in READABLE[role] else 403
        assert client.get(url).status_code == expected, (role, url)


def writes(a) -> list[tuple[str, str, dict]]:
    return [
        ("patch", f"/api/v1/organizations/{a.org.id}/", {"name": "renamed"}),
        ("post", "/api/v1/teams/", {"name": "New team"}),
        ("patch", f"/api/v1/teams/{a.team.id}/", {"name": "renamed"}),
        ("delete", f"/api/v1/teams/{a.team.id}/", {}),
        ("post", "/api/v1/members/", {"username": "newbie", "role": "member"}),
        ("patch", f"/api/v1/members/{a.memberships['member'].id}/", {"role": "admin"}),
        ("post", "/api/v1/keys/", {"name": "finance key"}),
        ("post", f"/api/v1/keys/{a.member_key.id}/revoke/", {}),
        ("post", f"/api/v1/keys/{a.member_key.id}/rotate/", {}),
        ("patch", f"/api/v1/keys/{a.member_key.id}/", {"name": "renamed"}),
        ("post", "/api/v1/tokens/", {"name": "automation"}),
        ("post", "/api/v1/models/", {"name": "new-model", "vendor": "x"}),
        ("patch", "/api/v1/models/gpt-test/", {"input_price": "1"}),
        ("post", "/api/v1/providers/", {"name": "p", "kind": "openai", "base_url": "https://x.test"}),
        ("patch", f"/api/v1/providers/{a.provider.id}/", {"name": "renamed"}),
        ("delete", f"/api/v1/providers/{a.provider.id}/", {}),
        ("post", "/api/v1/deployments/", {"model": "gpt-test", "provider": a.provider.id, "name": "d2"}),
        ("patch", f"/api/v1/deployments/{a.deployment.id}/", {"weight": 5}),
        ("delete", f"/api/v1/deployments/{a.deployment.id}/", {}),
    ]


def test_finance_gets_403_on_every_write_and_nothing_changes(a):
    client = client_for(a.finance, a.org)
    before = (ApiKey.objects.count(), Team.objects.count(), ModelCard.objects.count())
    for method, url, payload in writes(a):
        response = getattr(client, method)(url, payload, format="json")
        assert response.status_code == 403, (method, url, response.status_code)
    assert (ApiKey.objects.count(), Team.objects.count(), ModelCard.objects.count()) == before
    a.member_key.refresh_from_db()
    assert a.member_key.revoked_at is None
    assert client.get(f"/api/v1/keys/{a.member_key.id}/").status_code == 403


def test_member_gets_403_on_every_write_except_their_own_keys(a):
    client = client_for(a.member, a.org)
    key_writes = {"/api/v1/keys/", f"/api/v1/keys/{a.member_key.id}/"}
    for method, url, payload in writes(a):
        if url in key_writes or url.startswith(f"/api/v1/keys/{a.member_key.id}/"):
            continue
        assert getattr(client, method)(url, payload, format="json").status_code == 403, (method, url)
    renamed = client.patch(f"/api/v1/keys/{a.member_key.id}/", {"name": "mine"}, format="json")
    assert renamed.status_code == 200


def test_admin_may_do_everything_but_hand_out_the_owner_role(a):
    client = client_for(a.admin, a.org)
    assert client.post("/api/v1/teams/", {"name": "Ops"}, format="json").status_code == 201
    promote = client.patch(f"/api/v1/members/{a.memberships['member'].id}/", {"role": "owner"}, format="json")
    assert promote.status_code == 403
    demote_owner = client.patch(f"/api/v1/members/{a.memberships['owner'].id}/", {"role": "member"}, format="json")
    assert demote_owner.status_code == 403
    assert client.delete(f"/api/v1/members/{a.memberships['owner'].id}/").status_code == 403
    a.memberships["member"].refresh_from_db()
    assert a.memberships["member"].role == "member"


def test_anonymous_callers_get_401(a):
    client = APIClient()
    for url in EVERYTHING:
        response = client.get(url)
        assert response.status_code == 401, url
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_user_without_membership_gets_403(a):
    from console import services

    outsider = services.user_create(username="outsider", password="pw-Outsider-1")
    client = client_for(outsider)
    assert client.get("/api/v1/models/").status_code == 403


def test_session_writes_need_the_csrf_token_but_token_writes_do_not(a):
    from console import services

    session = APIClient(enforce_csrf_checks=True)
    session.force_login(a.owner)
    assert session.get("/api/v1/teams/").status_code == 200
    forged = session.post("/api/v1/teams/", {"name": "Forged"}, format="json")
    assert forged.status_code == 403 and "CSRF" in forged.json()["detail"]

    issued = services.admin_token_create(organization=a.org, user=a.owner, name="ci")
    token = APIClient(enforce_csrf_checks=True)
    token.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    assert token.post("/api/v1/teams/", {"name": "By token"}, format="json").status_code == 201
    assert not Team.objects.filter(name="Forged").exists()
