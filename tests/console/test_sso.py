"""Single sign-on against a real OpenID Connect provider: django-oauth-toolkit in its own
process on a loopback port (tests/oidc_provider). A user signs in through the provider's
own login and consent pages and lands in the organizations, with the roles, that the
organizations' group mappings give their groups."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.urls import reverse

from audit.models import AuditEvent
from console.models import Membership, Role, SsoIdentity
from console.signin.policy import mapping_set, policy_update
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
IDP_PASSWORD = "idp-password-1"
CLIENT = {"id": "gatehouse-test", "secret": "gatehouse-test-secret-0123456789"}
USERS = [
    {"username": "alice", "email": "alice@corp.example", "first_name": "Alice", "last_name": "Liddell",
     "groups": ["acme-admins", "rival-finance", "unrelated"]},
    {"username": "carol", "email": "carol@corp.example", "groups": ["acme-members", "acme-owners"]},
    {"username": "bob", "email": "bob@corp.example", "groups": ["nobody-maps-this"]},
]  # fmt: skip


class _Forms(HTMLParser):
    """The forms of a page: action and the values of their inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({"action": attrs.get("action") or "", "fields": {}})
        elif tag == "input" and self.forms and attrs.get("name"):
            if attrs.get("type") == "submit" and attrs["name"] != "allow":
                return
            self.forms[-1]["fields"][attrs["name"]] = attrs.get("value") or ""


def _form(html: str) -> dict:
    parser = _Forms()
    parser.feed(html)
    assert parser.forms, html[:500]
    return parser.forms[-1]


@pytest.fixture(scope="module")
def identity_provider(tmp_path_factory):
    port = free_port()
    folder = tmp_path_factory.mktemp("idp")
    spec = {
        "port": port,
        "database": str(folder / "idp.sqlite3"),
        "client": {**CLIENT, "redirect_uri": "http://testserver/sso/callback/"},
        "users": [{**user, "password": IDP_PASSWORD} for user in USERS],
    }
    (folder / "spec.json").write_text(json.dumps(spec))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "GATEHOUSE_", "PYTEST_"))}
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.oidc_provider.serve", str(folder / "spec.json")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(folder / "idp.log", "w"),  # noqa: SIM115 - closed with the process
    )
    issuer = f"http://127.0.0.1:{port}/o"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{issuer}/.well-known/openid-configuration/", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("the identity provider did not start:\n" + (folder / "idp.log").read_text())
        time.sleep(0.1)
    yield issuer
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def sso(identity_provider, settings):
    settings.GATEHOUSE_SIGNIN = {
        **django_settings.GATEHOUSE_SIGNIN,
        "OIDC_ISSUER": identity_provider,
        "OIDC_DISCOVERY_URL": f"{identity_provider}/.well-known/openid-configuration/",
        "OIDC_CLIENT_ID": CLIENT["id"],
        "OIDC_CLIENT_SECRET": CLIENT["secret"],
        "OIDC_GROUPS_CLAIM": "groups",
    }
    return identity_provider


def _sign_in(client, username: str):
    """The browser's round trip: Gatehouse -> the provider's login and consent -> Gatehouse."""
    start = client.get(reverse("console:oidc-start"))
    assert start.status_code == 302
    location = start["Location"]
    provider = urlsplit(location).netloc
    pages = []
    with httpx.Client(timeout=10) as browser:
        response = browser.get(location)
        for _ in range(10):
            if response.is_redirect:
                location = str(response.url.join(response.headers["location"]))
                if urlsplit(location).netloc != provider:
                    break  # back to Gatehouse
                response = browser.get(location)
                continue
            form = _form(response.text)
            fields = form["fields"]
            if "password" in fields:
                pages.append("login")
                fields.update(username=username, password=IDP_PASSWORD)
            else:  # the consent page
                pages.append("consent")
                fields["allow"] = "Authorize"
            response = browser.post(str(response.url.join(form["action"] or response.url.path)), data=fields)
        else:
            raise AssertionError("the provider never sent the browser back")
    assert pages == ["login", "consent"]  # the provider's own pages, as a browser would see them
    back = urlsplit(location)
    assert back.netloc == "testserver" and back.path == reverse("console:oidc-callback")
    return client.get(f"{back.path}?{back.query}")


@pytest.fixture
def mapped(orgs):
    mapping_set(organization=orgs.acme, group="acme-admins", role=Role.ADMIN, actor=orgs.owner)
    mapping_set(organization=orgs.acme, group="acme-members", role=Role.MEMBER, actor=orgs.owner)
    mapping_set(organization=orgs.acme, group="acme-owners", role=Role.OWNER, actor=orgs.owner)
    mapping_set(organization=orgs.rival, group="rival-finance", role=Role.FINANCE, actor=orgs.rival_owner)
    return orgs


def test_a_user_signs_in_through_the_provider_and_lands_in_the_mapped_organizations(client, sso, mapped):
    assert b'data-testid="sso-login"' in client.get(reverse("console:login")).content
    landed = _sign_in(client, "alice")
    assert landed.status_code == 302 and landed["Location"] == reverse("console:home")
    alice = get_user_model().objects.get(username="alice")
    assert (alice.email, alice.first_name, alice.last_name) == ("alice@corp.example", "Alice", "Liddell")
    assert not alice.has_usable_password()
    identity = SsoIdentity.objects.get(user=alice)
    assert identity.issuer == sso and identity.subject
    roles = dict(Membership.objects.filter(user=alice).values_list("organization__slug", "role"))
    assert roles == {"acme": Role.ADMIN, "rival": Role.FINANCE}
    home = client.get(reverse("console:home"))
    assert home.status_code == 200 and home.context["user"] == alice
    assert home.context["request"].membership.role == Role.ADMIN  # first organization by name: Acme
    assert AuditEvent.objects.filter(action="login.sso", actor="alice").exists()

    # The strongest mapped role wins; a user no group maps is created but joins nothing.
    client.logout()
    _sign_in(client, "carol")
    assert Membership.objects.get(user__username="carol", organization=mapped.acme).role == Role.OWNER
    client.logout()
    _sign_in(client, "bob")
    assert client.get(reverse("console:home")).status_code == 200
    assert not Membership.objects.filter(user__username="bob").exists()
    assert get_user_model().objects.filter(username__in=["alice", "bob", "carol"]).count() == 3  # no cap


def test_mapping_changes_in_the_console_apply_at_the_next_sign_in(client, sso, mapped):
    _sign_in(client, "alice")
    client.logout()
    client.force_login(mapped.owner)
    page = client.get(reverse("console:signin-settings"))
    assert page.status_code == 200 and b"acme-admins" in page.content
    acme_admins = mapped.acme.sso_mappings.get(group="acme-admins")
    assert client.post(reverse("console:sso-mapping-delete", args=[acme_admins.pk])).status_code == 302
    assert (
        client.post(
            reverse("console:signin-settings"), {"action": "mapping", "group": "unrelated", "role": "finance"}
        ).status_code
        == 302
    )
    # Acme now requires single sign-on; the provider still signs its users in.
    assert client.post(reverse("console:signin-settings"), {"action": "policy", "require_sso": "on"}).status_code == 302
    assert mapped.acme.signin_policy.require_sso
    client.logout()

    _sign_in(client, "alice")
    roles = dict(Membership.objects.filter(user__username="alice").values_list("organization__slug", "role"))
    assert roles == {"acme": Role.FINANCE, "rival": Role.FINANCE}
    assert client.get(reverse("console:home")).status_code == 200

    # The rival organization drops its mapping: the membership it gave ends at the next sign-in.
    mapped.rival.sso_mappings.all().delete()
    client.logout()
    _sign_in(client, "alice")
    assert set(Membership.objects.filter(user__username="alice").values_list("organization__slug", flat=True)) == {
        "acme"
    }


def test_mappings_are_per_organization_and_admins_cannot_map_to_owner(client, sso, mapped):
    client.force_login(mapped.admin)
    page = client.get(reverse("console:signin-settings"))
    assert b"rival-finance" not in page.content  # another organization's mapping is not shown
    client.post(reverse("console:signin-settings"), {"action": "mapping", "group": "admins-pick", "role": "owner"})
    assert not mapped.acme.sso_mappings.filter(group="admins-pick").exists()
    rival_mapping = mapped.rival.sso_mappings.get()
    assert client.post(reverse("console:sso-mapping-delete", args=[rival_mapping.pk])).status_code == 404
    client.force_login(mapped.member)
    assert client.get(reverse("console:signin-settings")).status_code == 403


def test_a_refused_sign_in_returns_to_the_login_page(client, sso, orgs):
    response = client.get(reverse("console:oidc-callback"), {"error": "access_denied", "state": "x"})
    assert response.status_code == 302 and response["Location"] == reverse("console:login") + "?sso=failed"
    page = client.get(response["Location"])
    assert b"Single sign-on did not complete" in page.content
    assert client.get(reverse("console:home")).status_code == 302


def test_requiring_sso_needs_it_configured(client, orgs, settings):
    client.force_login(orgs.owner)
    response = client.post(reverse("console:signin-settings"), {"action": "policy", "require_sso": "on"})
    assert response.status_code == 200 and b"not configured" in response.content
    policy_update(organization=orgs.acme, require_sso=False, require_totp=False, actor=orgs.owner)
    assert not orgs.acme.signin_policy.require_sso


def test_the_redirect_uri_follows_the_configured_base_url(client, sso, settings, db):
    settings.GATEHOUSE_SIGNIN = {**settings.GATEHOUSE_SIGNIN, "BASE_URL": "https://gateway.example.com/"}
    start = client.get(reverse("console:oidc-start"))
    assert "redirect_uri=https%3A%2F%2Fgateway.example.com%2Fsso%2Fcallback%2F" in start["Location"]


def test_an_unreachable_provider_fails_the_sign_in_not_the_page(client, settings, db):
    settings.GATEHOUSE_SIGNIN = {
        **settings.GATEHOUSE_SIGNIN,
        "OIDC_ISSUER": f"http://127.0.0.1:{free_port()}/o",
        "OIDC_CLIENT_ID": "gatehouse",
    }
    start = client.get(reverse("console:oidc-start"))
    assert start.status_code == 302 and start["Location"].endswith("?sso=failed")
    session = client.session
    session["oidc_states"] = {"s1": {"nonce": "n", "code_verifier": None, "added_on": 0}}
    session.save()
    callback = client.get(reverse("console:oidc-callback"), {"code": "c", "state": "s1"})
    assert callback.status_code == 302 and callback["Location"].endswith("?sso=failed")
