"""The per-provider allowlist of client headers passed upstream."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from console import services as console_services
from providers import services
from providers.headers import forward_headers_clean, forwardable_headers
from providers.models import Provider
from providers.snapshot import catalog_build


def test_nothing_is_forwarded_without_an_allowlist():
    assert forwardable_headers(frozenset(), {"traceparent": "00-abc", "Authorization": "Bearer sk"}) == {}


def test_only_allowed_headers_pass_matched_case_insensitively():
    client = {"Traceparent": "00-abc-01", "TraceState": "a=b", "X-Other": "1", "authorization": "Bearer sk"}
    assert forwardable_headers(frozenset({"traceparent", "tracestate"}), client) == {
        "traceparent": "00-abc-01",
        "tracestate": "a=b",
    }


def test_forbidden_headers_never_pass_even_when_listed_outside_validation():
    allow = frozenset({"authorization", "x-api-key", "cookie", "x-gatehouse-tags", "connection", "traceparent"})
    client = {
        "Authorization": "Bearer sk",
        "X-Api-Key": "k",
        "Cookie": "s=1",
        "X-Gatehouse-Tags": "t",
        "Connection": "close",
        "traceparent": "00-x",
    }
    assert forwardable_headers(allow, client) == {"traceparent": "00-x"}


@pytest.mark.parametrize(
    "name",
    ["Authorization", "x-api-key", "API-Key", "cookie", "X-Gatehouse-Organization", "transfer-encoding", "Host"],
)
def test_validation_refuses_credentials_own_and_hop_by_hop_headers(name):
    with pytest.raises(ValidationError, match="can never be forwarded"):
        forward_headers_clean([name])


def test_validation_normalizes_and_refuses_bad_names():
    assert forward_headers_clean([" TraceParent", "tracestate", "traceparent", ""]) == ["traceparent", "tracestate"]
    with pytest.raises(ValidationError, match="not a valid header name"):
        forward_headers_clean(["bad header"])
    with pytest.raises(ValidationError, match="list of header names"):
        forward_headers_clean("traceparent")


@pytest.mark.django_db
def test_the_allowlist_is_stored_and_reaches_the_snapshot():
    provider = services.provider_create(
        name="traced", kind="openai", base_url="https://up.example/v1", forward_headers=["TraceParent"]
    )
    card, _ = services.model_card_upsert(name="traced-model", vendor="acme")
    services.deployment_create(model=card, provider=provider)
    assert Provider.objects.get(pk=provider.pk).forward_headers == ["traceparent"]
    info = catalog_build().model("traced-model").deployments[0]
    assert info.forward_headers == frozenset({"traceparent"})
    with pytest.raises(ValidationError):
        services.provider_update(provider=provider, forward_headers=["Authorization"])


@pytest.mark.django_db
def test_console_form_and_api_validate_the_allowlist(client):
    owner = console_services.user_create(username="fh-owner", password="pw-123456789")
    org = console_services.organization_create(name="FH", slug="fh", owner=owner)
    client.force_login(owner)
    data = {"name": "mine", "kind": "openai", "base_url": "https://up.example/v1", "forward_headers": "cookie"}
    response = client.post("/registry/providers/new/", data)
    assert response.status_code == 200 and b"can never be forwarded" in response.content
    data["forward_headers"] = "traceparent, baggage"
    assert client.post("/registry/providers/new/", data).status_code == 302
    assert Provider.objects.get(name="mine", organization=org).forward_headers == ["baggage", "traceparent"]

    issued = console_services.admin_token_create(organization=org, user=owner, name="t")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {issued.secret}"}
    provider = Provider.objects.get(name="mine")
    bad = client.patch(
        f"/api/v1/providers/{provider.pk}/", {"forward_headers": ["x-gatehouse-tags"]}, "application/json", **auth
    )
    assert bad.status_code == 400 and "forward_headers" in bad.json()
    good = client.patch(
        f"/api/v1/providers/{provider.pk}/", {"forward_headers": ["TraceState"]}, "application/json", **auth
    )
    assert good.status_code == 200 and good.json()["forward_headers"] == ["tracestate"]
