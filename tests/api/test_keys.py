"""Keys: the secret is shown once, stored only as a hash; members manage only their own."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from django.utils import timezone

from console.models import ApiKey
from tests.api.conftest import body_text, client_for

KEYS = "/api/v1/keys/"


def test_create_returns_the_secret_once_and_stores_only_its_sha256(a):
    client = client_for(a.admin, a.org)
    response = client.post(
        KEYS,
        {
            "name": "billing bot",
            "team": a.team.id,
            "user": a.member.id,
            "allowed_models": ["gpt-test", "gpt-test"],
            "tags": ["billing"],
            "metadata": {"owner": "finops"},
            "data_classification": "confidential",
            "app_name": "billing",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    data = response.json()
    secret = data["secret"]
    assert secret.startswith("sk-gh-")
    key = ApiKey.objects.get(id=data["id"])
    assert key.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert key.organization_id == a.org.id and key.team_id == a.team.id and key.user_id == a.member.id
    assert key.allowed_models == ["gpt-test"]
    assert data["prefix"] == secret[:12] and data["status"] == "active"
    assert "secret_hash" not in data and key.secret_hash not in body_text(response)

    for later in (client.get(KEYS), client.get(f"{KEYS}{key.id}/")):
        assert later.status_code == 200
        assert secret not in body_text(later) and key.secret_hash not in body_text(later)
        assert "secret" not in (later.json()["results"][0] if "results" in later.json() else later.json())


def test_create_rejects_unknown_models_and_foreign_team_with_field_messages(a, b):
    client = client_for(a.admin, a.org)
    response = client.post(
        KEYS, {"name": "x", "allowed_models": ["gpt-test", "no-such-model"], "team": b.team.id}, format="json"
    )
    assert response.status_code == 400
    errors = response.json()
    assert "no-such-model" in errors["allowed_models"][0]
    assert "team" in errors
    assert str(b.team.name) not in body_text(response)
    assert not ApiKey.objects.filter(name="x").exists()


def test_create_rejects_a_past_expiry_and_a_blank_name(a):
    client = client_for(a.admin, a.org)
    past = (timezone.now() - timedelta(days=1)).isoformat()
    response = client.post(KEYS, {"name": " ", "expires_at": past}, format="json")
    assert response.status_code == 400
    assert set(response.json()) >= {"name", "expires_at"}


def test_update_changes_the_settings_and_audits(a):
    from audit.models import AuditEvent

    client = client_for(a.admin, a.org)
    expiry = timezone.now() + timedelta(days=30)
    response = client.patch(
        f"{KEYS}{a.member_key.id}/",
        {"name": "renamed", "allowed_models": ["embed-test"], "expires_at": expiry.isoformat(), "tags": ["t1"]},
        format="json",
    )
    assert response.status_code == 200, response.content
    a.member_key.refresh_from_db()
    assert a.member_key.name == "renamed"
    assert a.member_key.allowed_models == ["embed-test"]
    assert a.member_key.tags == ["t1"]
    assert abs(a.member_key.expires_at - expiry) < timedelta(seconds=1)
    assert AuditEvent.objects.filter(action="key.update", target=a.member_key.prefix).exists()


def test_update_rejects_unknown_models(a):
    response = client_for(a.admin, a.org).patch(
        f"{KEYS}{a.member_key.id}/", {"allowed_models": ["nope"]}, format="json"
    )
    assert response.status_code == 400 and "allowed_models" in response.json()
    a.member_key.refresh_from_db()
    assert a.member_key.allowed_models == []


def test_revoke_marks_the_key_revoked_and_is_idempotent(a):
    client = client_for(a.admin, a.org)
    first = client.post(f"{KEYS}{a.member_key.id}/revoke/")
    assert first.status_code == 200 and first.json()["status"] == "revoked"
    again = client.post(f"{KEYS}{a.member_key.id}/revoke/")
    assert again.status_code == 200
    a.member_key.refresh_from_db()
    assert a.member_key.revoked_at is not None
    assert client.patch(f"{KEYS}{a.member_key.id}/", {"name": "zombie"}, format="json").status_code == 409


def test_rotate_returns_a_new_secret_once_and_revokes_the_old_key(a):
    client = client_for(a.admin, a.org)
    response = client.post(f"{KEYS}{a.member_key.id}/rotate/")
    assert response.status_code == 201, response.content
    data = response.json()
    new = ApiKey.objects.get(id=data["id"])
    assert new.id != a.member_key.id
    assert new.secret_hash == hashlib.sha256(data["secret"].encode()).hexdigest()
    assert new.user_id == a.member.id and new.team_id == a.team.id
    a.member_key.refresh_from_db()
    assert a.member_key.status == "revoked"
    assert client.post(f"{KEYS}{a.member_key.id}/rotate/").status_code == 409
    assert data["secret"] not in body_text(client.get(f"{KEYS}{new.id}/"))


def test_list_is_paginated_and_shows_status(a):
    client = client_for(a.owner, a.org)
    response = client.get(KEYS, {"limit": 1})
    assert response.status_code == 200
    data = response.json()
    assert data["count"] == 2 and len(data["results"]) == 1 and data["next"]
    assert data["results"][0]["status"] == "active"


def test_member_sees_and_manages_only_their_own_keys(a):
    client = client_for(a.member, a.org)
    listed = client.get(KEYS).json()
    assert [k["id"] for k in listed["results"]] == [a.member_key.id]
    assert client.get(f"{KEYS}{a.admin_key.id}/").status_code == 404
    assert client.post(f"{KEYS}{a.admin_key.id}/revoke/").status_code == 404
    assert client.post(f"{KEYS}{a.admin_key.id}/rotate/").status_code == 404
    assert client.patch(f"{KEYS}{a.admin_key.id}/", {"name": "mine now"}, format="json").status_code == 404
    a.admin_key.refresh_from_db()
    assert a.admin_key.revoked_at is None and a.admin_key.name == "admin app a"

    own = client.post(f"{KEYS}{a.member_key.id}/rotate/")
    assert own.status_code == 201


def test_member_creates_keys_only_for_themselves_and_their_teams(a):
    from console import services

    client = client_for(a.member, a.org)
    created = client.post(KEYS, {"name": "my script", "team": a.team.id}, format="json")
    assert created.status_code == 201
    assert ApiKey.objects.get(id=created.json()["id"]).user_id == a.member.id

    for_other = client.post(KEYS, {"name": "for admin", "user": a.admin.id}, format="json")
    assert for_other.status_code == 403

    other_team = services.team_create(organization=a.org, name="Not mine")
    foreign = client.post(KEYS, {"name": "other team", "team": other_team.id}, format="json")
    assert foreign.status_code == 400 and "team" in foreign.json()
    assert not ApiKey.objects.filter(name__in=["for admin", "other team"]).exists()


def test_key_list_runs_a_fixed_number_of_queries(a, django_assert_max_num_queries):
    from console import services

    for n in range(15):
        services.api_key_create(organization=a.org, name=f"bulk {n}", team=a.team, user=a.member)
    client = client_for(a.admin, a.org)
    with django_assert_max_num_queries(8):
        response = client.get(KEYS)
    assert response.json()["count"] == 17


def test_an_expired_key_shows_as_expired_and_cannot_be_rotated_into_a_fresh_one(a):
    from console import services

    services.api_key_update(key=a.member_key, expires_at=timezone.now() - timedelta(minutes=1))
    client = client_for(a.admin, a.org)
    assert client.get(f"{KEYS}{a.member_key.id}/").json()["status"] == "expired"
    rotated = client.post(f"{KEYS}{a.member_key.id}/rotate/")
    assert rotated.status_code == 409 and "expired" in rotated.json()["detail"]
    assert ApiKey.objects.filter(organization=a.org).count() == 2
