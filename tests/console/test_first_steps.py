"""First steps without the browser, and API tokens: console page, command, role and expiry."""

from __future__ import annotations

import re
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from console import services
from console.models import AdminToken, Membership, Organization, Team


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.fixture(autouse=True)
def fast_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.mark.django_db
def test_organization_user_team_and_token_from_the_command_line(client):
    run("create_user", "--username=ops", "--email=ops@example.com", "--password=Ops-Pass-123")
    created = run("create_organization", "--name=Initech", "--owner=ops", "--time-zone=Europe/Paris")
    assert "Created organization" in created
    org = Organization.objects.get(slug="initech")
    assert org.time_zone == "Europe/Paris"
    output = run("create_user", "--username=bob", "--org=initech", "--role=finance")
    password = re.search(r"Password \(shown once\): (\S+)", output).group(1)
    bob = get_user_model().objects.get(username="bob")
    assert bob.check_password(password)
    assert Membership.objects.get(organization=org, user=bob).role == "finance"
    run("create_team", "--org=initech", "--name=Data", "--members=ops,bob")
    assert set(Team.objects.get(name="Data").members.values_list("username", flat=True)) == {"ops", "bob"}

    secret = run("create_token", "--org=initech", "--user=ops", "--role=admin", "--secret-only").strip()
    response = client.get("/api/v1/teams/", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert response.status_code == 200
    assert "Data" in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("create_team", "--org=nope", "--name=x"), "No organization"),
        (("create_user", "--username=z", "--org=nope"), "No organization"),
        (("create_organization", "--name=X", "--owner=ghost"), "No user"),
        (("create_token", "--org=nope", "--user=x"), "No organization"),
    ],
)
def test_first_step_commands_refuse_bad_arguments_clearly(args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)


@pytest.fixture
def org(db):
    owner = services.user_create(username="tok-owner", password="pw-123456789")
    org = services.organization_create(name="Tok", slug="tok", owner=owner)
    finance = services.user_create(username="tok-fin", password="pw-123456789")
    services.membership_set(organization=org, user=finance, role="finance")
    return org


def test_a_token_never_gets_more_than_its_users_role(org):
    finance = get_user_model().objects.get(username="tok-fin")
    with pytest.raises(Exception, match="cannot issue a token with the admin role"):
        services.admin_token_create(organization=org, user=finance, name="x", role="admin")


def test_a_read_only_token_of_an_owner_cannot_write(org, client):
    owner = get_user_model().objects.get(username="tok-owner")
    issued = services.admin_token_create(organization=org, user=owner, name="reader", role="finance")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {issued.secret}"}
    assert client.get("/api/v1/budgets/", **auth).status_code == 200
    created = client.post("/api/v1/teams/", {"name": "Nope"}, "application/json", **auth)
    assert created.status_code == 403


def test_an_expired_token_is_refused(org, client):
    owner = get_user_model().objects.get(username="tok-owner")
    issued = services.admin_token_create(
        organization=org, user=owner, name="short", expires_at=timezone.now() + timedelta(seconds=60)
    )
    AdminToken.objects.filter(pk=issued.token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = client.get("/api/v1/teams/", HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    assert response.status_code == 401
    assert "expired" in response.content.decode()


def test_api_tokens_page_issues_shows_once_and_revokes(org, client):
    owner = get_user_model().objects.get(username="tok-owner")
    client.force_login(owner)
    page = client.get(reverse("console:token-list"))
    assert page.status_code == 200
    assert b"Authorization: Bearer" in page.content
    assert b"No API tokens yet" in page.content

    bad = client.post(reverse("console:token-list"), {"name": "", "role": "admin", "expires_in_days": "30"})
    assert bad.status_code == 200 and AdminToken.objects.count() == 0

    response = client.post(reverse("console:token-list"), {"name": "ci", "role": "admin", "expires_in_days": "30"})
    assert response.status_code == 302
    shown = client.get(response["Location"])
    secret = shown.context["secret"]
    assert secret.startswith("gha-") and secret.encode() in shown.content
    again = client.get(response["Location"])
    assert again.context["secret"] is None and secret.encode() not in again.content
    assert AdminToken.objects.count() == 1
    token = AdminToken.objects.get()
    assert token.role == "admin" and token.expires_at > timezone.now() + timedelta(days=29)
    assert client.get("/api/v1/teams/", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None

    confirm = client.get(reverse("console:token-revoke", args=[token.pk]))
    assert b"Revoke API token" in confirm.content
    assert client.post(reverse("console:token-revoke", args=[token.pk])).status_code == 302
    assert client.get("/api/v1/teams/", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 401


def test_finance_sees_only_own_tokens_and_only_its_role(org, client):
    owner = get_user_model().objects.get(username="tok-owner")
    services.admin_token_create(organization=org, user=owner, name="owner-token")
    client.force_login(get_user_model().objects.get(username="tok-fin"))
    page = client.get(reverse("console:token-list"))
    assert b"owner-token" not in page.content
    assert [value for value, _ in page.context["form"].fields["role"].choices] == ["finance"]


@pytest.mark.django_db
def test_the_api_schema_explains_the_authorization_header(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    description = schema["components"]["securitySchemes"]["adminToken"]["description"]
    assert "Authorization: Bearer gha-" in description
    assert "create_token" in description and "API tokens" in description
