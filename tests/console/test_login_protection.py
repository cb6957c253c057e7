"""Login protection: lockout per account and per client address (django-axes) with a
visible message and an audit event, the password policy, the TOTP second factor and
organizations that require it or single sign-on."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.models import AuditEvent
from console.signin.policy import policy_update
from tests.console.signin_fixtures import PASSWORD

LOGIN = "/login/"


def _login(client, username, password, **extra):
    return client.post(LOGIN, {"username": username, "password": password}, **extra)


def _signed_in(client) -> bool:
    return client.get(reverse("console:home")).status_code == 200


def _code(device: TOTPDevice, *, ahead: int = 0) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + ahead * device.step
    return f"{totp.token():0{device.digits}d}"


def test_twenty_wrong_passwords_then_the_right_one_is_refused_while_locked(client, orgs):
    for _ in range(20):
        response = _login(client, "acme-admin", "wrong-password-123")
        assert response.status_code in (200, 429)
    assert response.status_code == 429
    right = _login(client, "acme-admin", PASSWORD)
    assert right.status_code == 429
    assert b"Too many failed sign-ins" in right.content and b'data-testid="locked"' in right.content
    assert not _signed_in(client)
    events = AuditEvent.objects.filter(action="login.locked_out")
    assert events.filter(organization_id=orgs.acme.id, target="acme-admin").exists()
    assert events.filter(organization_id__isnull=True).exists()


def test_the_account_is_locked_from_every_address(client, orgs):
    for n in range(5):
        _login(client, "acme-owner", "wrong-password-123", REMOTE_ADDR=f"10.0.0.{n + 1}")
    refused = _login(client, "acme-owner", PASSWORD, REMOTE_ADDR="10.9.9.9")
    assert refused.status_code == 429 and not _signed_in(client)
    # Another account from a fresh address is unaffected.
    assert _login(client, "acme-admin", PASSWORD, REMOTE_ADDR="10.9.9.8").status_code == 302


def test_one_address_trying_many_accounts_is_locked(client, orgs):
    for n in range(5):
        _login(client, f"guess-{n}", "wrong-password-123", REMOTE_ADDR="192.0.2.7")
    refused = _login(client, "acme-admin", PASSWORD, REMOTE_ADDR="192.0.2.7")
    assert refused.status_code == 429 and b"Too many failed sign-ins" in refused.content
    assert _login(client, "acme-admin", PASSWORD, REMOTE_ADDR="192.0.2.8").status_code == 302


def test_a_few_failures_then_success_still_signs_in(client, orgs):
    for _ in range(3):
        assert _login(client, "acme-admin", "wrong-password-123").status_code == 200
    assert _login(client, "acme-admin", PASSWORD).status_code == 302
    assert _signed_in(client)


@pytest.mark.parametrize("password", ["short-1", "123456789012345", "password123456"])
def test_the_password_policy_refuses_weak_passwords(db, password):
    with pytest.raises(ValidationError):
        password_validation.validate_password(password)
    password_validation.validate_password("a-long-and-unusual-passphrase")


def test_totp_enrolment_then_password_sign_in_needs_the_code(client, orgs):
    client.force_login(orgs.admin)
    page = client.get(reverse("console:two-factor"))
    assert page.status_code == 200 and b"<svg" in page.content and b'data-testid="totp-secret"' in page.content
    device = TOTPDevice.objects.get(user=orgs.admin, confirmed=False)
    wrong_code = "000000" if _code(device) != "000000" else "111111"
    refused = client.post(reverse("console:two-factor"), {"code": wrong_code})
    assert refused.status_code == 200 and b"not right" in refused.content
    assert not TOTPDevice.objects.filter(user=orgs.admin, confirmed=True).exists()
    time.sleep(1.1)  # django-otp throttles: after a wrong code the next try waits a second
    assert client.post(reverse("console:two-factor"), {"code": _code(device)}).status_code == 302
    device.refresh_from_db()
    assert device.confirmed
    assert AuditEvent.objects.filter(action="totp.enroll", target="acme-admin").exists()
    client.logout()

    step = _login(client, "acme-admin", PASSWORD)
    assert step.status_code == 302 and step["Location"] == reverse("console:login-verify")
    assert not _signed_in(client)  # the password alone does not sign in
    wrong = client.post(reverse("console:login-verify"), {"code": "12345"})
    assert wrong.status_code == 200 and b"not right" in wrong.content and not _signed_in(client)
    time.sleep(1.1)
    done = client.post(reverse("console:login-verify"), {"code": _code(device, ahead=1)})
    assert done.status_code == 302 and _signed_in(client)


def test_an_organization_requiring_totp_makes_members_enrol_at_sign_in(client, orgs):
    policy_update(organization=orgs.acme, require_sso=False, require_totp=True, actor=orgs.owner)
    step = _login(client, "acme-owner", PASSWORD)
    assert step["Location"] == reverse("console:login-verify")
    page = client.get(reverse("console:login-verify"))
    assert b"Set up an authenticator app" in page.content and b"<svg" in page.content
    assert not _signed_in(client)
    device = TOTPDevice.objects.get(user=orgs.owner)
    assert client.post(reverse("console:login-verify"), {"code": _code(device)}).status_code == 302
    assert _signed_in(client)
    device.refresh_from_db()
    assert device.confirmed
    # It cannot be turned off while the organization requires it.
    client.post(reverse("console:two-factor"), {"action": "disable"})
    assert TOTPDevice.objects.filter(user=orgs.owner, confirmed=True).exists()


def test_the_verify_step_needs_a_password_first(client, orgs):
    response = client.post(reverse("console:login-verify"), {"code": "123456"})
    assert response.status_code == 302 and response["Location"] == reverse("console:login")
    assert not _signed_in(client)


def test_password_sign_in_is_refused_where_the_organization_requires_sso(client, orgs):
    policy_update(organization=orgs.acme, require_sso=True, require_totp=False, actor=orgs.owner)
    response = _login(client, "acme-admin", PASSWORD)
    assert response.status_code == 200 and b"single sign-on only" in response.content
    assert not _signed_in(client)
    # Members of other organizations are not affected.
    assert _login(client, "rival-owner", PASSWORD).status_code == 302


def test_the_login_page_shows_the_sso_button_only_when_configured(client, settings, db):
    assert b"sso-login" not in client.get(LOGIN).content
    settings.GATEHOUSE_SIGNIN = {
        **settings.GATEHOUSE_SIGNIN,
        "OIDC_ISSUER": "http://127.0.0.1:9/o",
        "OIDC_CLIENT_ID": "gatehouse",
        "OIDC_BUTTON_LABEL": "Sign in with Example SSO",
    }
    page = client.get(LOGIN)
    assert b'data-testid="sso-login"' in page.content and b"Sign in with Example SSO" in page.content


def test_the_lockout_counts_the_client_behind_a_trusted_proxy_only(rf, settings):
    from console.signin.backends import client_ip

    settings.GATEHOUSE = {**settings.GATEHOUSE, "TRUSTED_PROXIES": ("10.0.0.0/8",)}
    behind = rf.post(LOGIN, REMOTE_ADDR="10.1.2.3", HTTP_X_FORWARDED_FOR="203.0.113.9, 10.0.0.7")
    assert client_ip(behind) == "203.0.113.9"
    forged = rf.post(LOGIN, REMOTE_ADDR="198.51.100.4", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert client_ip(forged) == "198.51.100.4"
    # Only addresses reach the lockout rows (PostgreSQL keeps them in an address column).
    garbled = rf.post(LOGIN, REMOTE_ADDR="10.1.2.3", HTTP_X_FORWARDED_FOR="unknown, 10.0.0.7")
    assert client_ip(garbled) == "10.0.0.7"
    nowhere = rf.post(LOGIN)
    del nowhere.META["REMOTE_ADDR"]
    assert client_ip(nowhere) is None
