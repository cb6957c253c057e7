"""Members join by invitation only: a one-time, expiring link, e-mailed or copied, that the
invitee accepts by signing in or creating an account. Adding an existing account by
username is gone, and nothing shows users of other organizations."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from console.models import Invitation, Membership, Role
from console.signin.invitations import invitation_create
from tests.console.signin_fixtures import PASSWORD, api_client

INVITATIONS = "/api/v1/invitations/"


def _signup(client, link, username, email="new@example.com"):
    return client.post(
        link,
        {"action": "signup", "username": username, "email": email, "password1": PASSWORD, "password2": PASSWORD},
    )


def test_console_invitation_is_mailed_and_accepted_by_a_new_account(client, orgs):
    client.force_login(orgs.admin)
    page = client.post(
        reverse("console:member-invite"), {"email": "new@example.com", "role": "finance", "send_email": "on"}
    )
    assert page.status_code == 200
    link = page.context["issued"].url
    assert link.encode() in page.content  # the admin can copy it
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["new@example.com"] and link in mail.outbox[0].body
    assert "Acme" in mail.outbox[0].subject
    invitation = Invitation.objects.get(email="new@example.com")
    assert invitation.token_hash not in link and invitation.status == "pending"  # only a hash is stored
    listing = client.get(reverse("console:member-list"))
    assert b"new@example.com" in listing.content and link.encode() not in listing.content

    client.logout()
    landing = client.get(link)
    assert landing.status_code == 200 and b"Join Acme" in landing.content
    joined = _signup(client, link, "newcomer")
    assert joined.status_code == 302
    membership = Membership.objects.get(organization=orgs.acme, user__username="newcomer")
    assert membership.role == Role.FINANCE
    assert client.get(reverse("console:home")).status_code == 200  # signed in
    invitation.refresh_from_db()
    assert invitation.status == "accepted" and invitation.accepted_by == membership.user
    assert AuditEvent.objects.filter(action="invitation.accept", organization_id=orgs.acme.id).exists()

    client.logout()
    again = client.get(link)
    assert again.status_code == 404 and b"not valid" in again.content  # one-time
    assert _signup(client, link, "second-try").status_code == 404
    assert not Membership.objects.filter(user__username="second-try").exists()


def test_an_existing_account_signs_in_and_accepts_with_the_invited_role(client, orgs):
    issued = invitation_create(
        organization=orgs.acme, email="whoever@example.com", role=Role.ADMIN, actor=orgs.owner, send=False
    )
    assert mail.outbox == [] and not issued.emailed
    landing = client.get(issued.url)
    assert b"sign in" in landing.content
    login = client.post(reverse("console:login"), {"username": "rival-owner", "password": PASSWORD, "next": issued.url})
    assert login.status_code == 302 and login["Location"] == issued.url
    accepted = client.post(issued.url, {"action": "accept"})
    assert accepted.status_code == 302
    membership = Membership.objects.get(organization=orgs.acme, user=orgs.rival_owner)
    assert membership.role == Role.ADMIN
    assert client.session["gatehouse_org_id"] == orgs.acme.id


def test_expired_and_revoked_invitations_do_not_open(client, orgs):
    expired = invitation_create(organization=orgs.acme, email="late@example.com", role="member", actor=orgs.owner)
    Invitation.objects.filter(pk=expired.invitation.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert client.get(expired.url).status_code == 404
    assert _signup(client, expired.url, "late").status_code == 404

    revoked = invitation_create(organization=orgs.acme, email="gone@example.com", role="member", actor=orgs.owner)
    client.force_login(orgs.admin)
    response = client.post(reverse("console:invitation-revoke", args=[revoked.invitation.pk]))
    assert response.status_code == 302
    client.logout()
    assert client.get(revoked.url).status_code == 404
    assert not Membership.objects.filter(user__username__in=["late", "gone"]).exists()
    assert Invitation.objects.get(pk=revoked.invitation.pk).status == "revoked"


def test_the_old_add_by_username_path_is_gone(client, orgs):
    # API: no POST on members; the stranger is not added and their e-mail is not shown.
    api = api_client(orgs.owner, orgs.acme)
    response = api.post("/api/v1/members/", {"username": "rival-owner", "role": "member"}, format="json")
    assert response.status_code == 405
    assert b"secret.person" not in response.content
    # Console: the form takes an e-mail address, never a username.
    client.force_login(orgs.owner)
    page = client.post(reverse("console:member-invite"), {"username": "rival-owner", "role": "member"})
    assert page.status_code == 200 and b"errorlist" in page.content
    assert not Membership.objects.filter(organization=orgs.acme, user=orgs.rival_owner).exists()
    assert b'name="username"' not in client.get(reverse("console:member-invite")).content


def test_api_invites_lists_and_revokes(orgs):
    api = api_client(orgs.admin, orgs.acme)
    created = api.post(INVITATIONS, {"email": "api@example.com", "role": "member"}, format="json")
    assert created.status_code == 201
    body = created.json()
    assert body["status"] == "pending" and body["emailed"] is True and "/join/ghi-" in body["url"]
    assert mail.outbox[0].to == ["api@example.com"] and body["url"] in mail.outbox[0].body
    listing = api.get(INVITATIONS).json()
    assert [item["email"] for item in listing["results"]] == ["api@example.com"]
    assert "url" not in listing["results"][0]  # the link is in the creating response only
    detail = api.get(f"{INVITATIONS}{body['id']}/")
    assert detail.status_code == 200 and "url" not in detail.json()
    assert api.delete(f"{INVITATIONS}{body['id']}/").status_code == 204
    assert api.get(f"{INVITATIONS}{body['id']}/").json()["status"] == "revoked"
    assert api.delete(f"{INVITATIONS}{body['id']}/").status_code == 409  # revoked already: a conflict with its state

    quiet = api.post(INVITATIONS, {"email": "quiet@example.com", "role": "finance", "send_email": False}, format="json")
    assert quiet.status_code == 201 and quiet.json()["emailed"] is False and len(mail.outbox) == 1
    assert api.post(INVITATIONS, {"email": "boss@example.com", "role": "owner"}, format="json").status_code == 403
    assert api.post(INVITATIONS, {"email": "nope", "role": "member"}, format="json").status_code == 400
    assert api.post(INVITATIONS, {"email": "x@example.com", "role": "emperor"}, format="json").status_code == 400
    member = api_client(orgs.member, orgs.acme)
    assert member.get(INVITATIONS).status_code == 403
    assert member.post(INVITATIONS, {"email": "m@example.com"}, format="json").status_code == 403


def test_invitations_do_not_leak_across_organizations(orgs):
    theirs = invitation_create(
        organization=orgs.rival, email="their-hire@example.com", role="admin", actor=orgs.rival_owner, send=False
    )
    api = api_client(orgs.owner, orgs.acme)
    assert api.get(f"{INVITATIONS}{theirs.invitation.pk}/").status_code == 404
    assert api.delete(f"{INVITATIONS}{theirs.invitation.pk}/").status_code == 404
    assert Invitation.objects.get(pk=theirs.invitation.pk).status == "pending"
    assert "their-hire" not in api.get(INVITATIONS).content.decode()

    # Inviting the address of another organization's user answers exactly like an unknown address.
    known = api.post(INVITATIONS, {"email": "secret.person@rival.example", "role": "member"}, format="json")
    unknown = api.post(INVITATIONS, {"email": "nobody@nowhere.example", "role": "member"}, format="json")
    assert known.status_code == unknown.status_code == 201
    assert set(known.json()) == set(unknown.json())
    for text in (known.content.decode(), api.get("/api/v1/members/").content.decode()):
        assert "rival-owner" not in text and "Rival" not in text
    # An address a member here uses is refused, naming nothing beyond this organization.
    dup = api.post(INVITATIONS, {"email": "acme-member@example.com", "role": "member"}, format="json")
    assert dup.status_code == 400 and "member of this organization" in dup.content.decode()

    client_b = api_client(orgs.rival_owner, orgs.rival)
    assert all(i["email"] != "nobody@nowhere.example" for i in client_b.get(INVITATIONS).json()["results"])


@pytest.mark.parametrize("token", ["", "ghi-unknown", "x" * 300])
def test_unknown_links_are_refused_without_detail(client, orgs, token):
    response = client.get(f"/join/{token}/") if token else client.get("/join/x/")
    assert response.status_code == 404
    assert b"Acme" not in response.content


def test_console_pages_never_show_or_touch_another_organizations_invitations(client, orgs):
    theirs = invitation_create(
        organization=orgs.rival, email="their-hire@example.com", role="admin", actor=orgs.rival_owner, send=False
    )
    client.force_login(orgs.owner)
    assert client.post(reverse("console:invitation-revoke", args=[theirs.invitation.pk])).status_code == 404
    assert Invitation.objects.get(pk=theirs.invitation.pk).status == "pending"
    page = client.get(reverse("console:member-list")).content.decode()
    assert "their-hire" not in page and "rival-owner" not in page and "secret.person" not in page
    client.force_login(orgs.member)  # members see the users, not the invitations
    assert b"Invitations" not in client.get(reverse("console:member-list")).content
    refused = client.post(reverse("console:member-invite"), {"email": "x@example.com", "role": "member"})
    assert refused.status_code == 403 and not Invitation.objects.filter(email="x@example.com").exists()
