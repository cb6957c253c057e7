"""Hardening of the console and the API: a strict Content-Security-Policy on every page,
HSTS and an authenticated API schema in production, the simulator's control endpoint
behind its admin token wherever the simulator is served."""

from __future__ import annotations

import re

import httpx
import pytest
from django.conf import settings
from django.test import Client, override_settings
from django.urls import URLPattern, URLResolver, get_resolver

from tests.test_settings import production_env, start_with

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I)


def csp_of(response) -> dict[str, list[str]]:
    header = response.headers.get("Content-Security-Policy", "")
    directives = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = words[1:]
    return directives


def console_pages() -> list[str]:
    """Every console page that takes no parameter, from the URL conf."""
    found: list[str] = []

    def walk(resolver, prefix: str) -> None:
        for entry in resolver.url_patterns:
            if isinstance(entry, URLResolver):
                walk(entry, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern):
                route = prefix + str(entry.pattern)
                if "<" in route or route.startswith(("^", "api/", "admin/", "v1/", ".well-known")):
                    continue
                if any(word in route for word in ("logout", "export", ".csv", "metrics", "switch")):
                    continue
                found.append("/" + route)

    walk(get_resolver(), "")
    return found


@pytest.fixture
def owner(transactional_db):
    from console import services

    user = services.user_create(username="csp-owner", email="csp@example.test", password="pw-Csp-123-xyz")
    services.organization_create(name="CSP Org", slug="csp-org", owner=user)
    return user


def test_every_console_page_sends_a_strict_policy_and_runs_no_inline_script(owner) -> None:
    client = Client()
    client.force_login(owner)
    pages = console_pages()
    assert len(pages) > 20
    checked = 0
    for url in pages:
        response = client.get(url)
        assert response.status_code < 500, url
        if response.status_code != 200 or not response["content-type"].startswith("text/html"):
            continue
        policy = csp_of(response)
        assert policy.get("default-src") == ["'self'"], url
        assert "'unsafe-inline'" not in policy["script-src"] and "'unsafe-eval'" not in policy["script-src"], url
        assert policy.get("object-src") == ["'none'"] and policy.get("frame-ancestors") == ["'none'"], url
        body = response.content.decode()
        nonces = [
            word.removeprefix("'nonce-").rstrip("'") for word in policy["script-src"] if word.startswith("'nonce-")
        ]
        for tag in INLINE_SCRIPT.findall(body):
            assert any(f'nonce="{nonce}"' in tag for nonce in nonces), f"{url}: inline script without nonce: {tag}"
        assert not re.search(r"\son[a-z]+=\"", body), f"{url}: inline event handler"
        title = re.search(r"<title>(.*?)</title>", body, re.S)
        assert title and "<" not in title.group(1) and len(title.group(1)) < 200, f"{url}: broken <title>"
        checked += 1
    assert checked > 15


def test_the_login_page_has_the_policy_too(db) -> None:
    response = Client().get("/login/")
    assert response.status_code == 200
    assert "'unsafe-inline'" not in csp_of(response)["script-src"]


@pytest.mark.parametrize("path", ["/api/schema/", "/api/docs/"])
def test_api_schema_and_docs_need_authentication_when_configured_so(owner, path) -> None:
    from console import services

    organization = owner.memberships.first().organization
    token = services.admin_token_create(organization=organization, user=owner, name="docs").secret
    production = {**settings.GATEHOUSE, "API_DOCS_PUBLIC": False}
    with override_settings(GATEHOUSE=production):
        assert Client().get(path).status_code in (401, 403)
        assert Client().get(path, HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200
        signed_in = Client()
        signed_in.force_login(owner)
        assert signed_in.get(path).status_code == 200


def test_the_api_docs_page_loads_its_script_from_our_origin(db) -> None:
    response = Client().get("/api/docs/")
    assert response.status_code == 200
    body = response.content.decode()
    assert not INLINE_SCRIPT.search(body), "the docs page would need an inline script"
    assert "?script" in body  # swagger's start-up code is served as a script of its own


def test_production_requires_authentication_for_schema_and_docs_and_sends_hsts(tmp_path) -> None:
    script = (
        "from django.test import Client; c = Client(); "
        "print([c.get(p, secure=True).status_code for p in ('/api/schema/', '/api/docs/')]); "
        "print(c.get('/login/', secure=True).headers.get('Strict-Transport-Security')); "
        "print(c.get('/login/', headers={'X-Forwarded-Proto': 'https'}).headers.get('Strict-Transport-Security')); "
        "print(c.get('/login/').headers.get('Strict-Transport-Security'))"
    )
    env = production_env(GATEHOUSE_ALLOWED_HOSTS="testserver", GATEHOUSE_PROXY_SSL_HEADER="X-Forwarded-Proto")
    result = start_with(env, tmp_path, script)
    assert result.returncode == 0, result.stderr[-2000:]
    statuses, hsts, behind_proxy, plain_http = result.stdout.strip().splitlines()[-4:]
    assert statuses in ("[401, 401]", "[403, 403]"), statuses
    assert hsts.startswith("max-age=31536000") and "includeSubDomains" in hsts
    assert behind_proxy == hsts and plain_http == "None"


def test_the_simulator_mounted_in_the_app_guards_its_control_endpoint(gateway_server) -> None:
    url = f"{gateway_server.url}/sim/_control"
    assert httpx.get(url).status_code == 401
    assert httpx.post(url, json={"model": "*", "fault": "500"}).status_code == 401
    assert httpx.delete(url, headers={"authorization": "Bearer wrong"}).status_code == 403
    token = settings.GATEHOUSE["SIMULATOR_CONTROL_TOKEN"]
    listed = httpx.get(url, headers={"authorization": f"Bearer {token}"})
    assert listed.status_code == 200 and listed.json() == {"overrides": {}}
