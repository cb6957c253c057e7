"""The lockout as a browser meets it: the real ASGI app on a loopback port (django-axes
takes its async path there), not the test client."""

from __future__ import annotations

import re

import httpx
import pytest

from console import services
from tests.console.signin_fixtures import PASSWORD


def _post_login(browser: httpx.Client, username: str, password: str) -> httpx.Response:
    page = browser.get("/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    return browser.post("/login/", data={"csrfmiddlewaretoken": token, "username": username, "password": password})


@pytest.mark.django_db(transaction=True)
def test_twenty_wrong_passwords_lock_the_account_on_the_served_app(gateway_server):
    owner = services.user_create(username="served-owner", password=PASSWORD)
    services.organization_create(name="Served", owner=owner)
    with httpx.Client(base_url=gateway_server.url, timeout=10, headers={"Referer": gateway_server.url}) as browser:
        statuses = [_post_login(browser, "served-owner", "wrong-password-123").status_code for _ in range(20)]
        assert statuses[0] == 200 and statuses[-1] == 429
        right = _post_login(browser, "served-owner", PASSWORD)
        assert right.status_code == 429 and "Too many failed sign-ins" in right.text
        assert browser.get("/", follow_redirects=False).status_code == 302  # still signed out
