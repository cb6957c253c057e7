"""Routing console pages: everyone reads, owners and admins write; changes go
through the services (versions, four eyes); HTMX partials for the matrix and rules."""

from __future__ import annotations

import pytest
from django.urls import reverse

from console.models import ApiKey
from console.services import api_key_create
from routing import services
from routing.models import PolicyVersion
from routing.selectors import policy_live

HTMX = {"HTTP_HX_REQUEST": "true"}
PAGES = ["route-list", "rule-list", "matrix", "settings", "history", "dry-run", "health"]


@pytest.fixture
def owner_client(client, org):
    client.force_login(org.owner)
    return client


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_for_members_and_shows_empty_states(client, org, page):
    client.force_login(org.member)
    response = client.get(reverse(f"routing:{page}"))
    assert response.status_code == 200
    assert b"routing-tabs" in response.content


def test_members_cannot_change_routing(client, org):
    client.force_login(org.member)
    assert client.get(reverse("routing:route-edit")).status_code == 403
    toggle = {"subject": "rt-model", "data_class": "pii"}
    assert client.post(reverse("routing:matrix-toggle"), toggle).status_code == 403
    assert client.post(reverse("routing:settings"), {"classes": "public"}).status_code == 403
    assert not PolicyVersion.objects.exists()


def test_route_editor_creates_and_edits_a_route(owner_client, org):
    response = owner_client.post(
        reverse("routing:route-edit"),
        {
            "name": "fast",
            "kind": "standard",
            "strategy": "round_robin",
            "description": "",
            "targets": "model:rt-model 3\ndeployment:rt-model@sim",
            "fallbacks": "context_length rt-big",
            "max_attempts": "2",
            "exploration": "0.05",
            "layers": "",
            "compress_model": "",
            "keep_turns": "0",
        },
    )
    assert response.status_code == 302
    route = policy_live(organization=org.org).document["routes"][0]
    assert route["strategy"] == "round_robin" and route["targets"][0] == {"model": "rt-model", "weight": 3}
    assert route["fallbacks"] == [{"when": "context_length", "route": "rt-big"}]
    page = owner_client.get(reverse("routing:route-edit") + "?name=fast")
    assert b"model:rt-model 3" in page.content
    response = owner_client.post(
        reverse("routing:route-edit"),
        {
            "name": "cheap",
            "kind": "cascade",
            "strategy": "weighted",
            "targets": "",
            "fallbacks": "",
            "max_attempts": "0",
            "exploration": "0.05",
            "keep_turns": "0",
            "compress_model": "rt-model",
            "layers": "model:rt-model min_length=5 regex='^[A-Z]'\nmodel:rt-big",
        },
    )
    assert response.status_code == 302
    cascade = next(r for r in policy_live(organization=org.org).document["routes"] if r["name"] == "cheap")
    assert cascade["layers"][0]["validators"]["min_length"] == 5
    assert cascade["layers"][0]["validators"]["regex"] == "^[A-Z]"
    listing = owner_client.get(reverse("routing:route-list"))
    assert listing.status_code == 200 and b"1. rt-model" in listing.content and b"cascade" in listing.content


def test_route_editor_shows_document_errors(owner_client, org):
    response = owner_client.post(
        reverse("routing:route-edit"),
        {
            "name": "bad",
            "kind": "standard",
            "strategy": "weighted",
            "targets": "model:no-such-model",
            "fallbacks": "",
            "max_attempts": "0",
            "exploration": "0.05",
            "layers": "",
            "keep_turns": "0",
        },
    )
    assert response.status_code == 200
    assert b"unknown model" in response.content


def test_matrix_cell_toggles_with_htmx(owner_client, org):
    response = owner_client.post(
        reverse("routing:matrix-toggle"), {"subject": "rt-model", "data_class": "pii", "approved": "0"}, **HTMX
    )
    assert response.status_code == 200
    assert b'id="grid"' in response.content and b"<html" not in response.content
    approved = policy_live(organization=org.org).document["matrix"]["rt-model"]
    assert "pii" not in approved and "public" in approved


def test_rules_move_with_htmx(owner_client, org):
    services.rule_put(organization=org.org, actor=org.owner, rule={"name": "first", "route": "rt-model"})
    services.rule_put(organization=org.org, actor=org.owner, rule={"name": "second", "route": "rt-big"})
    response = owner_client.post(reverse("routing:rule-move"), {"name": "second", "direction": "up"}, **HTMX)
    assert response.status_code == 200 and b'id="rules"' in response.content
    assert [r["name"] for r in policy_live(organization=org.org).document["rules"]] == ["second", "first"]


def test_four_eyes_approval_and_rollback_in_the_console(client, org):
    services.policy_settings_put(organization=org.org, actor=org.owner, require_approval=True)
    proposal = services.route_put(
        organization=org.org, actor=org.owner, route={"name": "fast", "targets": [{"model": "rt-model"}]}
    )
    client.force_login(org.owner)
    page = client.get(reverse("routing:version-detail", args=[proposal.number]))
    assert b"an author cannot approve" in page.content
    assert b"waiting for a second admin" in client.get(reverse("routing:route-list")).content
    client.force_login(org.admin)
    page = client.get(reverse("routing:version-detail", args=[proposal.number]))
    assert b"Approve and go live" in page.content and b"+- name: fast" in page.content
    client.post(reverse("routing:version-decide", args=[proposal.number]), {"decision": "approve"})
    proposal.refresh_from_db()
    assert proposal.state == "live"
    confirm = client.get(reverse("routing:version-rollback", args=[1]))
    assert b"Roll back to v1?" in confirm.content
    client.post(reverse("routing:version-rollback", args=[1]))
    assert PolicyVersion.objects.filter(rollback_of=1, state="pending").exists()  # four eyes still applies


def test_dry_run_explains_without_calling_a_provider(owner_client, org):
    services.policy_propose(
        organization=org.org,
        actor=org.owner,
        document={
            "routes": [{"name": "fast", "targets": [{"model": "rt-model"}]}],
            "rules": [{"name": "legal", "route": "rt-big", "keywords": ["contract"]}],
            "matrix": {"rt-model": ["public", "internal"]},
        },
    )
    key = api_key_create(organization=org.org, name="app")
    response = owner_client.post(
        reverse("routing:dry-run"),
        {
            "request": '{"model": "fast", "messages": [{"role": "user", "content": "mail bob@example.com"}]}',
            "key": str(key.key.id),
            "version": "live",
        },
        **HTMX,
    )
    assert response.status_code == 200
    assert b"no_compliant_model" in response.content and b"pii" in response.content
    response = owner_client.post(
        reverse("routing:dry-run"),
        {
            "request": '{"model": "fast", "messages": [{"role": "user", "content": "hello"}]}',
            "version": "live",
        },
        **HTMX,
    )
    assert b"rt-model@sim" in response.content and b"the route named by model" in response.content
    assert ApiKey.objects.count() == 1


def test_health_page_and_breaker_settings(owner_client, org):
    page = owner_client.get(reverse("routing:health"))
    assert b"rt-model@sim" in page.content and b"healthy" in page.content
    # A shared deployment (no organization) is managed by a superuser only.
    assert owner_client.get(reverse("routing:breaker-edit", args=[org.deployment.pk])).status_code == 403
    org.owner.is_superuser = True
    org.owner.save()
    response = owner_client.post(
        reverse("routing:breaker-edit", args=[org.deployment.pk]),
        {"failure_threshold": "3", "failure_window": "20", "cooldown": "10"},
    )
    assert response.status_code == 302
    assert b"3 / 20 s / 10 s" in owner_client.get(reverse("routing:health")).content
