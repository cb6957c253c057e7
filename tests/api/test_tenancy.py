"""Organizations, teams and members through the API: each write goes through a
service, so it is audited."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from console import services
from console.models import Membership, Team
from tests.api.conftest import client_for

pytestmark = pytest.mark.django_db


# --- organizations ---------------------------------------------------------------


def test_organizations_lists_the_callers_memberships_and_marks_the_current(a, b):
    services.membership_set(organization=b.org, user=a.admin, role="finance")
    client = client_for(a.admin, b.org)
    results = client.get("/api/v1/organizations/").json()["results"]
    assert {(o["slug"], o["role"], o["is_current"]) for o in results} == {
        ("org-a", "admin", False),
        ("org-b", "finance", True),
    }
    assert client.get(f"/api/v1/organizations/{b.org.id}/").json()["role"] == "finance"
    # Details only for the organization requests act in.
    assert client.get(f"/api/v1/organizations/{a.org.id}/").status_code == 404


def test_owner_renames_the_organization_and_sets_its_time_zone(a):
    client = client_for(a.owner, a.org)
    response = client.patch(
        f"/api/v1/organizations/{a.org.id}/", {"name": "Acme Renamed", "time_zone": "Europe/Berlin"}, format="json"
    )
    assert response.status_code == 200, response.content
    a.org.refresh_from_db()
    assert (a.org.name, a.org.time_zone) == ("Acme Renamed", "Europe/Berlin")
    assert AuditEvent.objects.filter(action="organization.update", organization_id=a.org.id).exists()
    bad = client.patch(f"/api/v1/organizations/{a.org.id}/", {"time_zone": "Mars/Olympus"}, format="json")
    assert bad.status_code == 400 and "time_zone" in bad.json()


# --- teams -------------------------------------------------------------------------


def test_team_crud_and_membership(a):
    client = client_for(a.admin, a.org)
    created = client.post("/api/v1/teams/", {"name": "Platform", "description": "infra"}, format="json")
    assert created.status_code == 201
    team_id = created.json()["id"]
    assert Team.objects.get(id=team_id).organization_id == a.org.id

    duplicate = client.post("/api/v1/teams/", {"name": "Platform"}, format="json")
    assert duplicate.status_code == 400 and "name" in duplicate.json()

    renamed = client.patch(f"/api/v1/teams/{team_id}/", {"description": "the platform team"}, format="json")
    assert renamed.status_code == 200 and renamed.json()["description"] == "the platform team"
    clash = client.patch(f"/api/v1/teams/{team_id}/", {"name": a.team.name}, format="json")
    assert clash.status_code == 400

    added = client.post(f"/api/v1/teams/{team_id}/members/", {"user": a.finance.id}, format="json")
    assert added.status_code == 200 and added.json()["members"] == [a.finance.id]
    assert client.get(f"/api/v1/teams/{team_id}/").json()["members"] == [a.finance.id]
    removed = client.delete(f"/api/v1/teams/{team_id}/members/{a.finance.id}/")
    assert removed.status_code == 204
    assert not Team.objects.get(id=team_id).members.exists()
    assert client.delete(f"/api/v1/teams/{team_id}/members/{a.finance.id}/").status_code == 404

    assert client.delete(f"/api/v1/teams/{team_id}/").status_code == 204
    assert not Team.objects.filter(id=team_id).exists()
    actions = set(AuditEvent.objects.filter(organization_id=a.org.id).values_list("action", flat=True))
    assert {"team.create", "team.update", "team.member_add", "team.member_remove", "team.delete"} <= actions


def test_team_list_runs_a_fixed_number_of_queries(a, django_assert_max_num_queries):
    for n in range(10):
        team = services.team_create(organization=a.org, name=f"Team {n}")
        services.team_member_add(team=team, user=a.member)
    client = client_for(a.admin, a.org)
    with django_assert_max_num_queries(8):
        response = client.get("/api/v1/teams/")
    assert response.json()["count"] == 11


# --- members -------------------------------------------------------------------------


def test_members_are_not_added_by_username_any_more(b, a):
    """People join by invitation (tests/console/test_invitations.py); the old POST is gone."""
    client = client_for(a.admin, a.org)
    response = client.post("/api/v1/members/", {"username": b.finance.username, "role": "member"}, format="json")
    assert response.status_code == 405
    assert not Membership.objects.filter(organization=a.org, user=b.finance).exists()
    assert "finance@b.test" not in response.content.decode()


def test_changing_a_role_and_removing_a_member(a):
    client = client_for(a.owner, a.org)
    membership = a.memberships["member"]
    assert client.patch(f"/api/v1/members/{membership.id}/", {"role": "admin"}, format="json").status_code == 200
    membership.refresh_from_db()
    assert membership.role == "admin"
    assert client.delete(f"/api/v1/members/{membership.id}/").status_code == 204
    assert not Membership.objects.filter(id=membership.id).exists()


def test_the_last_owner_cannot_be_removed_or_demoted(a):
    client = client_for(a.owner, a.org)
    owner = a.memberships["owner"]
    removed = client.delete(f"/api/v1/members/{owner.id}/")
    assert removed.status_code == 409
    assert removed.json() == {"detail": "An organization keeps at least one owner."}
    demoted = client.patch(f"/api/v1/members/{owner.id}/", {"role": "admin"}, format="json")
    assert demoted.status_code == 400 and "owner" in demoted.json()["role"][0]
    owner.refresh_from_db()
    assert owner.role == "owner"

    # With a second owner, the first may go.
    assert (
        client.patch(f"/api/v1/members/{a.memberships['admin'].id}/", {"role": "owner"}, format="json").status_code
        == 200
    )
    assert client.delete(f"/api/v1/members/{owner.id}/").status_code == 204
