"""A user of organization A cannot read, change, revoke or delete anything of
organization B by id: every attempt is a 404 (existence is not revealed) and the
database is unchanged afterwards."""

from __future__ import annotations

import pytest

from budgets.models import UsageRecord
from console.models import AdminToken, ApiKey, Membership, Organization, Team
from providers.models import Deployment, Provider
from tests.api.conftest import client_for

pytestmark = pytest.mark.django_db


def snapshot(b) -> dict:
    """Everything of B that an attack could change."""
    return {
        "org": list(Organization.objects.filter(id=b.org.id).values()),
        "teams": list(Team.objects.filter(organization=b.org).values()),
        "team_members": sorted(b.team.members.values_list("id", flat=True)),
        "keys": list(ApiKey.objects.filter(organization=b.org).order_by("id").values()),
        "members": list(Membership.objects.filter(organization=b.org).order_by("id").values()),
        "providers": list(Provider.objects.filter(organization=b.org).values()),
        "deployments": list(Deployment.objects.filter(provider__organization=b.org).values()),
        "tokens": list(AdminToken.objects.filter(organization=b.org).values()),
        "usage": list(UsageRecord.objects.filter(organization_id=b.org.id).values()),
    }


def attacks(b, usage_id: str, token_id: int) -> list[tuple[str, str, dict | None]]:
    member_of_b = b.memberships["member"].id
    return [
        ("get", f"/api/v1/organizations/{b.org.id}/", None),
        ("patch", f"/api/v1/organizations/{b.org.id}/", {"name": "pwned"}),
        ("get", f"/api/v1/teams/{b.team.id}/", None),
        ("patch", f"/api/v1/teams/{b.team.id}/", {"name": "pwned"}),
        ("delete", f"/api/v1/teams/{b.team.id}/", None),
        ("post", f"/api/v1/teams/{b.team.id}/members/", {"user": b.member.id}),
        ("delete", f"/api/v1/teams/{b.team.id}/members/{b.member.id}/", None),
        ("get", f"/api/v1/keys/{b.member_key.id}/", None),
        ("patch", f"/api/v1/keys/{b.member_key.id}/", {"name": "pwned", "allowed_models": []}),
        ("post", f"/api/v1/keys/{b.member_key.id}/revoke/", None),
        ("post", f"/api/v1/keys/{b.member_key.id}/rotate/", None),
        ("get", f"/api/v1/members/{member_of_b}/", None),
        ("patch", f"/api/v1/members/{member_of_b}/", {"role": "admin"}),
        ("delete", f"/api/v1/members/{member_of_b}/", None),
        ("get", f"/api/v1/providers/{b.provider.id}/", None),
        ("patch", f"/api/v1/providers/{b.provider.id}/", {"base_url": "https://evil.test", "secret": "x"}),
        ("delete", f"/api/v1/providers/{b.provider.id}/", None),
        ("get", f"/api/v1/deployments/{b.deployment.id}/", None),
        ("patch", f"/api/v1/deployments/{b.deployment.id}/", {"weight": 0}),
        ("delete", f"/api/v1/deployments/{b.deployment.id}/", None),
        ("get", f"/api/v1/tokens/{token_id}/", None),
        ("post", f"/api/v1/tokens/{token_id}/revoke/", None),
        ("get", f"/api/v1/usage/{usage_id}/", None),
    ]


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_every_attempt_on_another_organizations_objects_is_a_404_and_changes_nothing(a, b, usage, role):
    from console import services

    b_token = services.admin_token_create(organization=b.org, user=b.owner, name="b automation").token
    before = snapshot(b)
    client = client_for(getattr(a, role), a.org)
    for method, url, payload in attacks(b, usage["b1"], b_token.id):
        response = getattr(client, method)(url, payload, format="json") if payload else getattr(client, method)(url)
        assert response.status_code == 404, (method, url, response.status_code, response.content)
        assert response.json() == {"detail": "Not found."}, (method, url)
    assert snapshot(b) == before


def test_the_organization_header_cannot_switch_into_an_organization_one_is_not_part_of(a, b):
    client = client_for(a.owner)
    client.credentials(HTTP_X_GATEHOUSE_ORGANIZATION=b.org.slug)
    assert client.get("/api/v1/teams/").status_code == 403
    assert client.get(f"/api/v1/teams/{b.team.id}/").status_code == 403


def test_lists_show_only_the_own_organization(a, b, usage):
    client = client_for(a.owner, a.org)
    team_ids = {t["id"] for t in client.get("/api/v1/teams/").json()["results"]}
    key_ids = {k["id"] for k in client.get("/api/v1/keys/").json()["results"]}
    member_ids = {m["id"] for m in client.get("/api/v1/members/").json()["results"]}
    provider_ids = {p["id"] for p in client.get("/api/v1/providers/").json()["results"]}
    deployment_ids = {d["id"] for d in client.get("/api/v1/deployments/").json()["results"]}
    usage_ids = {u["request_id"] for u in client.get("/api/v1/usage/").json()["results"]}
    org_ids = {o["id"] for o in client.get("/api/v1/organizations/").json()["results"]}
    assert team_ids == {a.team.id}
    assert key_ids == {a.member_key.id, a.admin_key.id}
    assert member_ids == {m.id for m in a.memberships.values()}
    assert provider_ids == {a.provider.id}
    assert deployment_ids == {a.deployment.id}
    assert usage["b1"] not in usage_ids and usage["a1"] in usage_ids
    assert org_ids == {a.org.id}
    # Filters by another organization's ids find nothing, and summaries exclude it.
    assert client.get("/api/v1/usage/", {"key": b.member_key.id}).json()["results"] == []
    totals = client.get("/api/v1/usage/summary/", {"group_by": "model"}).json()["totals"]
    assert totals["requests"] == 5


def test_another_organizations_ids_in_a_body_are_rejected_without_naming_them(a, b):
    client = client_for(a.owner, a.org)
    key = client.post("/api/v1/keys/", {"name": "x", "team": b.team.id, "user": b.member.id}, format="json")
    assert key.status_code == 400 and set(key.json()) == {"team", "user"}
    add = client.post(f"/api/v1/teams/{a.team.id}/members/", {"user": b.owner.id}, format="json")
    assert add.status_code == 400 and "user" in add.json()
    deployment = client.post(
        "/api/v1/deployments/", {"model": "gpt-test", "provider": b.provider.id, "name": "sneaky"}, format="json"
    )
    assert deployment.status_code == 400 and "provider" in deployment.json()
    for response in (key, add, deployment):
        text = response.content.decode()
        assert b.team.name not in text and b.provider.name not in text and b.owner.username not in text
    assert not ApiKey.objects.filter(name="x").exists()
    assert not Deployment.objects.filter(name="sneaky").exists()
    assert b.owner not in a.team.members.all()
