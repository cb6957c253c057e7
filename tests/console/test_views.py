"""Console pages: access rules, tenancy scoping, HTMX partials and query counts.

Data is built through the services; usage records the way the batch writer
stores them (from `UsageEvent`s).
"""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.urls import reverse
from django.utils import timezone

from budgets.models import UsageRecord
from budgets.usage import UsageEvent
from console import services
from console.middleware import SESSION_KEY
from console.models import ApiKey, Membership, Role, Team
from providers import services as provider_services
from providers.models import Deployment, Provider

PASSWORD = "pw-Console-123"
HTMX = {"HTTP_HX_REQUEST": "true"}


def _user(username: str, password: str | None = None):
    # Most tests sign in with force_login; hashing a password for each user would only cost time.
    return services.user_create(username=username, email=f"{username}@example.com", password=password)


def _usage(org, *, key=None, model="gpt-4o-mini", status=200, cost="0.0012", when=None, **extra) -> UsageRecord:
    event = UsageEvent(
        request_id=f"req_{uuid.uuid4().hex}",
        created_at=when or timezone.now(),
        organization_id=org.id,
        endpoint="chat",
        status_code=status,
        key_id=key.id if key else None,
        team_id=key.team_id if key else None,
        user_id=key.user_id if key else None,
        model_requested=model,
        model_used=model,
        deployment_name=f"{model}@sim",
        provider_name="sim",
        attempts=1,
        input_tokens=120,
        output_tokens=40,
        input_price=Decimal("0.15"),
        output_price=Decimal("0.60"),
        input_cost=Decimal("0.000018"),
        output_cost=Decimal("0.000024"),
        cost=Decimal(cost),
        ttft_ms=85.0,
        latency_ms=240.0,
        tokens_per_second=166.7,
        **extra,
    )
    UsageRecord.objects.bulk_create([UsageRecord(**asdict(event))])
    return UsageRecord.objects.get(request_id=event.request_id)


@pytest.fixture
def world(db):
    """Two organizations; Acme has one user per role, a team, keys, a provider."""
    owner = _user("owner", PASSWORD)
    admin, member, finance, stranger = (_user(n) for n in ("admin", "member", "finance", "stranger"))
    org = services.organization_create(name="Acme", owner=owner)
    services.membership_set(organization=org, user=admin, role=Role.ADMIN, actor=owner)
    services.membership_set(organization=org, user=member, role=Role.MEMBER, actor=owner)
    services.membership_set(organization=org, user=finance, role=Role.FINANCE, actor=owner)
    team = services.team_create(organization=org, name="Research", actor=owner)
    owner_key = services.api_key_create(organization=org, name="owner app", team=team, user=owner, actor=owner)
    member_key = services.api_key_create(organization=org, name="member app", user=member, actor=member)

    other_owner = _user("other-owner")
    other = services.organization_create(name="Globex", owner=other_owner)
    other_team = services.team_create(organization=other, name="Globex team", actor=other_owner)
    other_key = services.api_key_create(organization=other, name="globex app", actor=other_owner)
    other_provider = provider_services.provider_create(
        name="globex-openai", kind="openai", base_url="https://api.example.com/v1", secret="sk-x", organization=other
    )

    card, _ = provider_services.model_card_upsert(
        name="gpt-4o-mini",
        vendor="openai",
        tier="mid",
        input_price=Decimal("0.15"),
        output_price=Decimal("0.60"),
        cached_input_price=Decimal("0.075"),
        capabilities=["chat", "streaming"],
    )
    provider_services.model_card_upsert(
        name="claude-sonnet-4-6", vendor="anthropic", tier="frontier", input_price=Decimal("3"), output_price="15"
    )
    provider = provider_services.provider_create(
        name="acme-openai", kind="openai", base_url="https://api.openai.com/v1", secret="sk-acme", organization=org
    )
    shared = provider_services.provider_create(name="sim-shared", kind="openai", base_url="sim://openai/v1")
    deployment = provider_services.deployment_create(model=card, provider=provider)
    other_deployment = provider_services.deployment_create(model=card, provider=other_provider)
    return SimpleNamespace(
        org=org,
        owner=owner,
        admin=admin,
        member=member,
        finance=finance,
        stranger=stranger,
        team=team,
        owner_key=owner_key.key,
        member_key=member_key.key,
        owner_secret=owner_key.secret,
        other=other,
        other_owner=other_owner,
        other_team=other_team,
        other_key=other_key.key,
        other_provider=other_provider,
        other_deployment=other_deployment,
        card=card,
        provider=provider,
        shared=shared,
        deployment=deployment,
    )


def _client(client, user):
    client.force_login(user)
    return client


# ---- access --------------------------------------------------------------------

PAGES = [
    ("console:home", []),
    ("console:team-list", []),
    ("console:member-list", []),
    ("console:key-list", []),
    ("console:key-create", []),
    ("providers:model-list", []),
    ("providers:provider-list", []),
    ("providers:deployment-list", []),
    ("budgets:usage-list", []),
]


@pytest.mark.parametrize("name,args", PAGES + [("console:member-invite", []), ("providers:provider-create", [])])
def test_pages_redirect_anonymous_users_to_login(client, db, name, args):
    url = reverse(name, args=args)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("console:login"))


def test_login_page_renders_and_signs_in(client, world):
    response = client.get(reverse("console:login"))
    assert response.status_code == 200
    assert b'name="password"' in response.content
    response = client.post(reverse("console:login"), {"username": "owner", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get(reverse("console:home")).status_code == 200


def test_every_page_renders_for_the_owner(client, world):
    _client(client, world.owner)
    urls = [reverse(name, args=args) for name, args in PAGES] + [
        reverse("console:member-invite"),
        reverse("console:team-detail", args=[world.team.pk]),
        reverse("console:team-edit", args=[world.team.pk]),
        reverse("console:team-delete", args=[world.team.pk]),
        reverse("console:key-detail", args=[world.owner_key.pk]),
        reverse("console:key-revoke", args=[world.owner_key.pk]),
        reverse("providers:provider-create"),
        reverse("providers:provider-detail", args=[world.provider.pk]),
        reverse("providers:provider-edit", args=[world.provider.pk]),
        reverse("providers:provider-delete", args=[world.provider.pk]),
        reverse("providers:provider-detail", args=[world.shared.pk]),
        reverse("providers:deployment-create", args=[world.provider.pk]),
        reverse("providers:deployment-edit", args=[world.deployment.pk]),
        reverse("providers:deployment-delete", args=[world.deployment.pk]),
    ]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url


def test_a_user_without_organization_gets_a_friendly_page(client, world):
    _client(client, world.stranger)
    response = client.get(reverse("console:home"))
    assert response.status_code == 200
    assert b"not part of an organization" in response.content
    assert client.get(reverse("console:key-list")).status_code == 200
    assert b"not part of an organization" in client.get(reverse("console:key-list")).content


@pytest.mark.parametrize(
    "method,name,kwargs",
    [
        ("post", "console:team-list", {}),
        ("get", "console:team-edit", {"team": True}),
        ("post", "console:team-delete", {"team": True}),
        ("get", "console:member-invite", {}),
        ("post", "console:member-role", {"membership": True}),
        ("get", "console:member-remove", {"membership": True}),
        ("get", "providers:provider-create", {}),
        ("get", "providers:provider-edit", {"provider": True}),
        ("get", "providers:deployment-create", {"provider": True}),
    ],
)
def test_members_and_finance_cannot_reach_admin_writes(client, world, method, name, kwargs):
    args = []
    if kwargs.get("team"):
        args = [world.team.pk]
    elif kwargs.get("membership"):
        args = [Membership.objects.get(organization=world.org, user=world.admin).pk]
    elif kwargs.get("provider"):
        args = [world.provider.pk]
    for user in (world.member, world.finance):
        client.force_login(user)
        response = getattr(client, method)(reverse(name, args=args), {"name": "X", "role": "owner"})
        assert response.status_code == 403, (user.username, name)
    assert Team.objects.filter(organization=world.org).count() == 1
    assert Membership.objects.get(organization=world.org, user=world.admin).role == Role.ADMIN


def test_a_member_sees_only_their_own_keys(client, world):
    _client(client, world.member)
    response = client.get(reverse("console:key-list"))
    assert response.status_code == 200
    assert b"member app" in response.content
    assert b"owner app" not in response.content
    assert client.get(reverse("console:key-detail", args=[world.owner_key.pk])).status_code == 404
    assert client.post(reverse("console:key-revoke", args=[world.owner_key.pk])).status_code == 404
    world.owner_key.refresh_from_db()
    assert world.owner_key.revoked_at is None


def test_a_member_creates_keys_for_themselves_only(client, world):
    _client(client, world.member)
    response = client.post(
        reverse("console:key-create"),
        {"name": "mine", "user": world.owner.pk, "data_classification": "internal"},
    )
    assert response.status_code == 302
    key = ApiKey.objects.get(name="mine")
    assert key.user == world.member


def test_finance_reads_usage_but_cannot_create_or_revoke_keys(client, world):
    _usage(world.org, key=world.owner_key)
    _client(client, world.finance)
    assert client.get(reverse("budgets:usage-list")).status_code == 200
    assert client.get(reverse("providers:model-list")).status_code == 200
    assert client.get(reverse("console:key-create")).status_code == 403
    response = client.post(reverse("console:key-create"), {"name": "finance key", "data_classification": "internal"})
    assert response.status_code == 403
    assert not ApiKey.objects.filter(name="finance key").exists()
    assert client.post(reverse("console:key-revoke", args=[world.owner_key.pk])).status_code == 403
    listing = client.get(reverse("console:key-list"))
    assert b"Create key" not in listing.content


# ---- keys ----------------------------------------------------------------------


def test_key_create_shows_the_secret_once(client, world):
    _client(client, world.owner)
    expires = (timezone.now() + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(
        reverse("console:key-create"),
        {
            "name": "billing bot",
            "team": world.team.pk,
            "user": world.admin.pk,
            "allowed_models": ["gpt-4o-mini"],
            "expires_at": expires,
            "data_classification": "confidential",
            "tags": "prod, billing, prod",
            "app_name": "billing",
        },
        follow=True,
    )
    assert response.status_code == 200
    assert response.redirect_chain[-1][1] == 302  # post / redirect / get
    assert response["Cache-Control"] == "no-store"
    key = ApiKey.objects.get(name="billing bot")
    secret = response.context["secret"]
    assert secret.startswith(key.prefix)
    assert secret.encode() in response.content
    assert b"won" in response.content or b"only time" in response.content
    assert key.secret_hash == services.secret_hash(secret)
    assert key.allowed_models == ["gpt-4o-mini"]
    assert key.tags == ["prod", "billing"]
    assert key.team == world.team and key.user == world.admin
    assert key.data_classification == "confidential" and key.expires_at is not None

    listing = client.get(reverse("console:key-list"))
    assert listing.status_code == 200
    assert b"billing bot" in listing.content
    assert secret.encode() not in listing.content
    assert secret.encode() not in client.get(reverse("console:key-detail", args=[key.pk])).content


def test_refreshing_the_key_created_page_creates_nothing_and_hides_the_secret(client, world):
    _client(client, world.owner)
    response = client.post(
        reverse("console:key-create"), {"name": "refresh me", "user": world.owner.pk, "data_classification": "internal"}
    )
    assert response.status_code == 302
    created_url = response["Location"]
    first = client.get(created_url)
    secret = first.context["secret"]
    assert secret and secret.encode() in first.content
    count = ApiKey.objects.count()

    again = client.get(created_url)

    assert again.status_code == 200
    assert again.context["secret"] is None
    assert secret.encode() not in again.content
    assert b"shown once" in again.content
    assert ApiKey.objects.count() == count


def test_key_create_reports_errors_inline(client, world):
    _client(client, world.owner)
    response = client.post(reverse("console:key-create"), {"name": "", "data_classification": "internal"})
    assert response.status_code == 200
    assert b"This field is required" in response.content
    past = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(
        reverse("console:key-create"), {"name": "late", "expires_at": past, "data_classification": "internal"}
    )
    assert b"The expiry lies in the past." in response.content
    response = client.post(
        reverse("console:key-create"),
        {"name": "bad model", "allowed_models": ["no-such-model"], "data_classification": "internal"},
    )
    assert b"no-such-model is not one of the available choices" in response.content
    assert not ApiKey.objects.filter(name__in=["late", "bad model"]).exists()


def test_revoke_needs_post_and_revokes(client, world):
    _client(client, world.owner)
    url = reverse("console:key-revoke", args=[world.owner_key.pk])
    confirm = client.get(url)
    assert confirm.status_code == 200
    assert b"Revoke key" in confirm.content
    world.owner_key.refresh_from_db()
    assert world.owner_key.revoked_at is None
    assert client.put(url).status_code == 405

    response = client.post(url)
    assert response.status_code == 302
    world.owner_key.refresh_from_db()
    assert world.owner_key.revoked_at is not None
    assert world.owner_key.status == "revoked"


def test_revoke_through_htmx_returns_the_row(client, world):
    _client(client, world.admin)
    response = client.post(reverse("console:key-revoke", args=[world.member_key.pk]), **HTMX)
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith(f'<tr id="key-{world.member_key.pk}"')
    assert "revoked" in body and "<html" not in body


def test_a_member_revokes_their_own_key(client, world):
    _client(client, world.member)
    response = client.post(reverse("console:key-revoke", args=[world.member_key.pk]))
    assert response.status_code == 302
    world.member_key.refresh_from_db()
    assert world.member_key.revoked_at is not None


def test_key_list_filters_by_status(client, world):
    services.api_key_revoke(key=world.member_key, actor=world.owner)
    _client(client, world.owner)
    response = client.get(reverse("console:key-list"), {"status": "revoked"}, **HTMX)
    body = response.content.decode()
    assert "member app" in body and "owner app" not in body
    assert "<html" not in body and 'id="key-results"' in body
    assert "HX-Request" in response["Vary"]
    active = client.get(reverse("console:key-list"), {"status": "active"}).content.decode()
    assert "owner app" in active and "member app" not in active
    # A history restore after a cache miss needs the whole page, not the fragment.
    restore = client.get(
        reverse("console:key-list"), {"status": "revoked"}, HTTP_HX_HISTORY_RESTORE_REQUEST="true", **HTMX
    )
    assert b"<html" in restore.content and b"member app" in restore.content


# ---- organizations -------------------------------------------------------------


def test_the_switcher_refuses_organizations_the_user_is_not_in(client, world):
    _client(client, world.owner)
    response = client.post(reverse("console:organization-switch"), {"organization": world.other.pk})
    assert response.status_code == 403
    assert client.session.get(SESSION_KEY) is None
    assert client.get(reverse("console:home")).context["current_organization"] == world.org


def test_the_switcher_moves_between_the_users_organizations(client, world):
    services.membership_set(organization=world.other, user=world.owner, role=Role.FINANCE, actor=world.other_owner)
    _client(client, world.owner)
    assert client.get(reverse("console:organization-switch")).status_code == 405
    response = client.post(reverse("console:organization-switch"), {"organization": world.other.pk})
    assert response.status_code == 302
    assert client.session[SESSION_KEY] == world.other.pk
    home = client.get(reverse("console:home"))
    assert home.context["current_organization"] == world.other
    assert b"Globex" in home.content
    # Finance in Globex: no key creation there.
    assert client.get(reverse("console:key-create")).status_code == 403


def test_another_organizations_objects_are_not_found(client, world):
    _client(client, world.owner)
    other_usage = _usage(world.other, key=world.other_key)
    other_membership = Membership.objects.get(organization=world.other, user=world.other_owner)
    urls = [
        ("get", reverse("console:key-detail", args=[world.other_key.pk])),
        ("get", reverse("console:key-revoke", args=[world.other_key.pk])),
        ("post", reverse("console:key-revoke", args=[world.other_key.pk])),
        ("get", reverse("console:team-detail", args=[world.other_team.pk])),
        ("get", reverse("console:team-edit", args=[world.other_team.pk])),
        ("post", reverse("console:team-delete", args=[world.other_team.pk])),
        ("post", reverse("console:member-role", args=[other_membership.pk])),
        ("post", reverse("console:member-remove", args=[other_membership.pk])),
        ("get", reverse("providers:provider-detail", args=[world.other_provider.pk])),
        ("get", reverse("providers:provider-edit", args=[world.other_provider.pk])),
        ("post", reverse("providers:provider-delete", args=[world.other_provider.pk])),
        ("get", reverse("providers:deployment-edit", args=[world.other_deployment.pk])),
        ("get", reverse("budgets:usage-detail", args=[other_usage.request_id])),
    ]
    for method, url in urls:
        response = getattr(client, method)(url)
        assert response.status_code == 404, url
    world.other_key.refresh_from_db()
    assert world.other_key.revoked_at is None
    assert Team.objects.filter(pk=world.other_team.pk).exists()
    assert Provider.objects.filter(pk=world.other_provider.pk).exists()


# ---- teams and members ---------------------------------------------------------


def test_team_create_inline_through_htmx(client, world):
    _client(client, world.admin)
    response = client.post(reverse("console:team-list"), {"name": "Platform", "description": "infra"}, **HTMX)
    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in body and 'id="teams"' in body
    assert "Team Platform created." in body
    assert Team.objects.filter(organization=world.org, name="Platform").exists()

    duplicate = client.post(reverse("console:team-list"), {"name": "Platform"}, **HTMX).content.decode()
    assert "exists already" in duplicate
    empty = client.post(reverse("console:team-list"), {"name": "  "}, **HTMX).content.decode()
    assert "This field is required" in empty or "A team needs a name" in empty
    assert Team.objects.filter(organization=world.org).count() == 2


def test_team_edit_delete_and_members(client, world):
    _client(client, world.owner)
    url = reverse("console:team-edit", args=[world.team.pk])
    assert client.post(url, {"name": "Research & Dev", "description": "R&D"}).status_code == 302
    world.team.refresh_from_db()
    assert world.team.name == "Research & Dev"

    add = reverse("console:team-member-add", args=[world.team.pk])
    assert client.post(add, {"user": world.member.pk}).status_code == 302
    assert world.team.members.filter(pk=world.member.pk).exists()
    # Only members of the organization can join its teams.
    client.post(add, {"user": world.other_owner.pk})
    assert not world.team.members.filter(pk=world.other_owner.pk).exists()
    detail = client.get(reverse("console:team-detail", args=[world.team.pk]))
    assert b"member@example.com" in detail.content
    remove = reverse("console:team-member-remove", args=[world.team.pk, world.member.pk])
    assert client.get(remove).status_code == 405
    assert client.post(remove).status_code == 302
    assert not world.team.members.filter(pk=world.member.pk).exists()

    delete = reverse("console:team-delete", args=[world.team.pk])
    assert b"Delete team" in client.get(delete).content
    assert Team.objects.filter(pk=world.team.pk).exists()
    assert client.post(delete).status_code == 302
    assert not Team.objects.filter(pk=world.team.pk).exists()


def test_members_invite_role_change_and_removal(client, world):
    _client(client, world.owner)
    response = client.post(
        reverse("console:member-invite"), {"email": "newbie@example.com", "role": "finance", "send_email": "on"}
    )
    assert response.status_code == 200 and b'data-testid="invitation-link"' in response.content
    link = response.context["issued"].url
    invalid = client.post(reverse("console:member-invite"), {"email": "not an address", "role": "member"})
    assert invalid.status_code == 200 and b"errorlist" in invalid.content
    client.logout()
    joined = client.post(
        link,
        {
            "action": "signup",
            "username": "newbie",
            "email": "newbie@example.com",
            "password1": PASSWORD + "-long",
            "password2": PASSWORD + "-long",
        },
    )
    assert joined.status_code == 302
    newbie = Membership.objects.get(organization=world.org, user__username="newbie")
    assert newbie.role == Role.FINANCE
    _client(client, world.owner)

    row = client.post(reverse("console:member-role", args=[newbie.pk]), {"role": "admin"}, **HTMX)
    assert row.status_code == 200 and b"<html" not in row.content
    newbie.refresh_from_db()
    assert newbie.role == Role.ADMIN

    remove = reverse("console:member-remove", args=[newbie.pk])
    assert b"Remove member" in client.get(remove).content
    assert client.post(remove).status_code == 302
    assert not Membership.objects.filter(pk=newbie.pk).exists()


def test_the_last_owner_is_protected(client, world):
    _client(client, world.owner)
    owner_membership = Membership.objects.get(organization=world.org, user=world.owner)
    row = client.post(reverse("console:member-role", args=[owner_membership.pk]), {"role": "member"}, **HTMX)
    assert b"at least one owner" in row.content
    response = client.post(reverse("console:member-remove", args=[owner_membership.pk]))
    assert response.status_code == 200
    assert b"at least one owner" in response.content
    owner_membership.refresh_from_db()
    assert owner_membership.role == Role.OWNER


def test_admins_cannot_touch_owners_or_grant_ownership(client, world):
    _client(client, world.admin)
    owner_membership = Membership.objects.get(organization=world.org, user=world.owner)
    assert (
        client.post(reverse("console:member-role", args=[owner_membership.pk]), {"role": "member"}).status_code == 403
    )
    member_membership = Membership.objects.get(organization=world.org, user=world.member)
    client.post(reverse("console:member-role", args=[member_membership.pk]), {"role": "owner"})
    member_membership.refresh_from_db()
    assert member_membership.role == Role.MEMBER


# ---- registry, providers, deployments ------------------------------------------


def test_model_registry_filters_and_partial(client, world):
    _client(client, world.member)
    page = client.get(reverse("providers:model-list"))
    assert b"gpt-4o-mini" in page.content and b"claude-sonnet-4-6" in page.content
    assert b"$0.15" in page.content and b"$0.60" in page.content
    partial = client.get(reverse("providers:model-list"), {"tier": "frontier"}, **HTMX)
    body = partial.content.decode()
    assert "<html" not in body and 'id="model-results"' in body
    assert "claude-sonnet-4-6" in body and "gpt-4o-mini" not in body
    search = client.get(reverse("providers:model-list"), {"search": "4o", "vendor": "openai"}, **HTMX)
    assert b"gpt-4o-mini" in search.content and b"claude" not in search.content
    none = client.get(reverse("providers:model-list"), {"search": "nothing-like-this"}, **HTMX)
    assert b"No models match" in none.content


def test_provider_secret_is_write_only(client, world):
    _client(client, world.owner)
    response = client.post(
        reverse("providers:provider-create"),
        {
            "name": "acme-anthropic",
            "kind": "anthropic",
            "base_url": "https://api.anthropic.com/",
            "secret": "sk-ant-TOP",
        },
    )
    assert response.status_code == 302
    provider = Provider.objects.get(name="acme-anthropic")
    assert provider.organization == world.org and provider.base_url == "https://api.anthropic.com"
    assert provider.has_secret and "sk-ant-TOP" not in provider.secret_encrypted
    detail = client.get(reverse("providers:provider-detail", args=[provider.pk]))
    assert b"secret stored" in detail.content and b"sk-ant-TOP" not in detail.content
    edit = client.get(reverse("providers:provider-edit", args=[provider.pk]))
    assert b"sk-ant-TOP" not in edit.content
    assert b'type="password"' in edit.content

    # Saving without a new secret keeps the stored one; clearing removes it.
    stored = provider.secret_encrypted
    data = {"name": "acme-anthropic", "kind": "anthropic", "base_url": "https://api.anthropic.com", "is_active": "on"}
    assert client.post(reverse("providers:provider-edit", args=[provider.pk]), data).status_code == 302
    provider.refresh_from_db()
    assert provider.secret_encrypted == stored
    client.post(reverse("providers:provider-edit", args=[provider.pk]), {**data, "clear_secret": "on"})
    provider.refresh_from_db()
    assert not provider.has_secret
    assert b"no secret" in client.get(reverse("providers:provider-list")).content


def test_provider_form_errors(client, world):
    _client(client, world.owner)
    response = client.post(
        reverse("providers:provider-create"),
        {"name": "acme-openai", "kind": "openai", "base_url": "ftp://x", "extra_headers": "[1]"},
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "must start with http://" in body
    assert "Give an object of header names" in body
    response = client.post(
        reverse("providers:provider-create"),
        {"name": "acme-openai", "kind": "openai", "base_url": "https://x.example.com"},
    )
    assert "exists already" in response.content.decode()


def test_shared_providers_are_read_only_for_organization_admins(client, world):
    _client(client, world.owner)
    assert client.get(reverse("providers:provider-detail", args=[world.shared.pk])).status_code == 200
    assert client.get(reverse("providers:provider-edit", args=[world.shared.pk])).status_code == 403
    assert client.get(reverse("providers:deployment-create", args=[world.shared.pk])).status_code == 403


def test_deployments_create_edit_and_delete(client, world):
    _client(client, world.owner)
    other_card, _ = provider_services.model_card_upsert(name="gpt-4.1", vendor="openai")
    url = reverse("providers:deployment-create", args=[world.provider.pk])
    bad = client.post(url, {"model": other_card.pk, "weight": -1, "timeout": 0})
    assert bad.status_code == 200 and b"errorlist" in bad.content
    response = client.post(url, {"model": other_card.pk, "weight": 3, "timeout": 30})
    assert response.status_code == 302
    deployment = Deployment.objects.get(model=other_card, provider=world.provider)
    assert deployment.name == "gpt-4.1@acme-openai" and deployment.weight == 3 and deployment.timeout == 30
    listing = client.get(reverse("providers:deployment-list"))
    assert b"gpt-4.1@acme-openai" in listing.content and b"globex-openai" not in listing.content

    edit = reverse("providers:deployment-edit", args=[deployment.pk])
    response = client.post(
        edit,
        {"model": other_card.pk, "name": deployment.name, "upstream_model": "gpt-4.1-2025", "weight": 0, "timeout": 10},
    )
    assert response.status_code == 302
    deployment.refresh_from_db()
    assert deployment.upstream_model == "gpt-4.1-2025" and deployment.weight == 0 and not deployment.is_active

    assert client.post(reverse("providers:deployment-delete", args=[deployment.pk])).status_code == 302
    assert not Deployment.objects.filter(pk=deployment.pk).exists()


# ---- usage ---------------------------------------------------------------------


def test_usage_list_filters_and_htmx_partial(client, world):
    ok = _usage(world.org, key=world.owner_key, model="gpt-4o-mini", workflow="triage", tags=["prod"])
    failed = _usage(world.org, key=world.member_key, model="claude-sonnet-4-6", status=502, error_type="upstream")
    old = _usage(world.org, key=world.owner_key, when=timezone.now() - timedelta(days=3))
    _client(client, world.owner)

    page = client.get(reverse("budgets:usage-list"))
    body = page.content.decode()
    for record in (ok, failed, old):
        assert record.request_id[:16] in body

    def partial(**params) -> str:
        response = client.get(reverse("budgets:usage-list"), params, **HTMX)
        assert response.status_code == 200
        text = response.content.decode()
        assert "<html" not in text and 'id="usage-results"' in text and "Plotly" not in text
        return text

    assert failed.request_id[:16] in partial(status="error")
    assert ok.request_id[:16] not in partial(status="error")
    only_model = partial(model="claude-sonnet-4-6")
    assert failed.request_id[:16] in only_model and ok.request_id[:16] not in only_model
    by_key = partial(key=world.member_key.pk)
    assert failed.request_id[:16] in by_key and ok.request_id[:16] not in by_key
    by_workflow = partial(workflow="triage")
    assert ok.request_id[:16] in by_workflow and old.request_id[:16] not in by_workflow
    by_tag = partial(tag="prod")
    assert ok.request_id[:16] in by_tag and failed.request_id[:16] not in by_tag
    since = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    recent = partial(since=since)
    assert ok.request_id[:16] in recent and old.request_id[:16] not in recent
    until = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    older = partial(until=until)
    assert old.request_id[:16] in older and ok.request_id[:16] not in older
    assert "No requests match" in partial(model="nothing")
    assert "must lie after" in partial(since=since, until=until)


def test_usage_pagination_pages_through_htmx(client, world):
    records = [_usage(world.org, when=timezone.now() - timedelta(minutes=i)) for i in range(55)]
    _client(client, world.owner)
    first = client.get(reverse("budgets:usage-list"), **HTMX).content.decode()
    assert records[0].request_id[:16] in first and records[54].request_id[:16] not in first
    assert "page=2" in first
    second = client.get(reverse("budgets:usage-list"), {"page": 2}, **HTMX).content.decode()
    assert records[54].request_id[:16] in second and records[0].request_id[:16] not in second


def test_usage_page_has_the_daily_chart(client, world):
    _usage(world.org, key=world.owner_key, cost="0.5")
    _client(client, world.finance)
    response = client.get(reverse("budgets:usage-list"))
    body = response.content.decode()
    assert 'id="usage-chart"' in body
    assert 'data-plotly-figure="usage-chart-figure"' in body  # drawn by static/js/charts.js, no inline script
    assert '<script type="application/json" id="usage-chart-figure">' in body
    assert "vendor/plotly.min.js" in body
    assert "cdn" not in body.lower()
    assert '"yaxis":"y2"' in body.replace(" ", "")


def test_usage_is_scoped_for_members(client, world):
    mine = _usage(world.org, key=world.member_key)
    theirs = _usage(world.org, key=world.owner_key)
    _client(client, world.member)
    body = client.get(reverse("budgets:usage-list")).content.decode()
    assert mine.request_id[:16] in body and theirs.request_id[:16] not in body
    assert 'id="usage-chart"' in body and "1 request ·" in body
    assert client.get(reverse("budgets:usage-detail", args=[theirs.request_id])).status_code == 404
    assert client.get(reverse("budgets:usage-detail", args=[mine.request_id])).status_code == 200


def test_usage_detail_shows_every_fact(client, world):
    record = _usage(
        world.org,
        key=world.owner_key,
        workflow="triage",
        tags=["prod", "eu"],
        metadata={
            "attempt_trail": [
                {"deployment": "gpt-4o-mini@down", "status": 503, "error": "overloaded", "message": "busy"}
            ],
            "ticket": "T-1",
        },
        end_user="alice",
    )
    _client(client, world.owner)
    body = client.get(reverse("budgets:usage-detail", args=[record.request_id])).content.decode()
    for text in (
        record.request_id,
        "gpt-4o-mini@down",
        "overloaded",
        "triage",
        "prod",
        "alice",
        "T-1",
        "$0.15",
        "$0.60",
        "$0.00120000",
        "85.0 ms",
        "240.0 ms",
        "166.7",
        "owner app",
        "Research",
    ):
        assert text in body, text


# ---- query counts --------------------------------------------------------------


def test_key_list_query_count_is_bounded(client, world, django_assert_max_num_queries):
    teams = [services.team_create(organization=world.org, name=f"T{i}", actor=world.owner) for i in range(5)]
    for i in range(30):
        services.api_key_create(
            organization=world.org,
            name=f"k{i}",
            team=teams[i % 5],
            user=world.admin,
            actor=world.owner,
            allowed_models=["gpt-4o-mini"],
        )
    _client(client, world.owner)
    with django_assert_max_num_queries(8):
        response = client.get(reverse("console:key-list"))
    assert response.content.count(b'<tr id="key-') == 32


def test_usage_list_query_count_is_bounded(client, world, django_assert_max_num_queries):
    for i in range(30):
        _usage(world.org, key=world.owner_key if i % 2 else world.member_key)
    _client(client, world.owner)
    with django_assert_max_num_queries(11):
        response = client.get(reverse("budgets:usage-list"))
    assert response.status_code == 200
    with django_assert_max_num_queries(7):
        partial = client.get(reverse("budgets:usage-list"), {"status": "ok"}, **HTMX)
    assert partial.content.count(b"/usage/req_") == 30
