"""Signing in: the login page (password or single sign-on), the second factor, lockouts."""

from __future__ import annotations

import base64
import time

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth import login as auth_login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_http_methods
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.events import audit_record
from console.models import Membership
from console.signin.forms import SignInForm, TotpCodeForm
from console.signin.oidc import SIGNIN_METHOD_KEY, sso_enabled
from console.signin.policy import totp_required_for

PENDING_USER = "gatehouse_pending_user"
PENDING_BACKEND = "gatehouse_pending_backend"
PENDING_AT = "gatehouse_pending_at"
PENDING_NEXT = "gatehouse_pending_next"
PENDING_MAX_AGE = 300  # seconds between the password and the code
LOCKED_MESSAGE = (
    "Too many failed sign-ins from this account or this address. Sign-in is locked for {minutes} minutes; "
    "try again later or ask an administrator to unlock it."
)


def _sso_context(request: HttpRequest) -> dict:
    return {
        "sso_enabled": sso_enabled(),
        "sso_label": settings.GATEHOUSE_SIGNIN["OIDC_BUTTON_LABEL"],
        "sso_failed": request.GET.get("sso") == "failed",
    }


def confirmed_device(user) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("id").first()


class SignInView(auth_views.LoginView):
    template_name = "console/login.html"
    authentication_form = SignInForm
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), **_sso_context(self.request)}

    def form_valid(self, form):
        user = form.get_user()
        if confirmed_device(user) is not None or totp_required_for(user):
            # The password was right; the session is not signed in until the second factor is.
            session = self.request.session
            session[PENDING_USER] = user.pk
            session[PENDING_BACKEND] = user.backend
            session[PENDING_AT] = time.time()
            session[PENDING_NEXT] = self.get_success_url()
            return redirect("console:login-verify")
        auth_login(self.request, user)
        self.request.session[SIGNIN_METHOD_KEY] = "password"
        return redirect(self.get_success_url())


def _pending_user(request: HttpRequest):
    session = request.session
    user_id, started = session.get(PENDING_USER), session.get(PENDING_AT, 0)
    if user_id is None or time.time() - started > PENDING_MAX_AGE:
        return None
    return get_user_model().objects.filter(pk=user_id, is_active=True).first()


def _finish_login(request: HttpRequest, user, device: TOTPDevice) -> HttpResponse:
    backend = request.session.get(PENDING_BACKEND)
    next_url = request.session.get(PENDING_NEXT) or settings.LOGIN_REDIRECT_URL
    for key in (PENDING_USER, PENDING_BACKEND, PENDING_AT, PENDING_NEXT):
        request.session.pop(key, None)
    auth_login(request, user, backend=backend)
    otp_login(request, device)
    request.session[SIGNIN_METHOD_KEY] = "password+totp"
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        next_url = settings.LOGIN_REDIRECT_URL
    return redirect(next_url)


def _qr_context(device: TOTPDevice) -> dict:
    return {
        "secret": base64.b32encode(device.bin_key).decode(),
        # segno draws the SVG from our own otpauth URL (escaped); inline, so no image source is needed.
        "qr": mark_safe(segno.make(device.config_url, error="m").svg_inline(scale=4)),  # noqa: S308
        "config_url": device.config_url,
    }


def _unconfirmed_device(user) -> TOTPDevice:
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-id").first()
    return device or TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)


@require_http_methods(["GET", "POST"])
def login_verify(request: HttpRequest) -> HttpResponse:
    """The second step of a password sign-in: a code from the authenticator app (or enrolling one)."""
    user = _pending_user(request)
    if user is None:
        messages.info(request, "Sign in again: the sign-in took too long or was not started.")
        return redirect("console:login")
    device = confirmed_device(user)
    enrolling = device is None  # the organization requires a second factor the user has not set up yet
    if enrolling:
        device = _unconfirmed_device(user)
    form = TotpCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        allowed, _ = device.verify_is_allowed()
        if allowed and device.verify_token(form.cleaned_data["code"]):
            if enrolling:
                device.confirmed = True
                device.save(update_fields=["confirmed"])
                audit_record(action="totp.enroll", actor=user.get_username(), target=user.get_username())
            return _finish_login(request, user, device)
        audit_record(action="login.totp_failed", actor=user.get_username(), target=user.get_username())
        form.add_error("code", "That code is not right, or too many tries were made; wait and try again.")
    context = {"form": form, "enrolling": enrolling, **(_qr_context(device) if enrolling else {})}
    return render(request, "console/login_verify.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def two_factor(request: HttpRequest) -> HttpResponse:
    """Set up (or turn off) an authenticator app for a signed-in user."""
    user = request.user
    device = confirmed_device(user)
    required = totp_required_for(user)
    form = TotpCodeForm(request.POST or None)
    if request.method == "POST" and request.POST.get("action") == "disable" and device is not None:
        if required:
            messages.error(request, "Your organization requires a second factor; it cannot be turned off.")
        else:
            TOTPDevice.objects.filter(user=user).delete()
            audit_record(action="totp.disable", actor=user.get_username(), target=user.get_username())
            messages.success(request, "The authenticator app no longer signs you in.")
        return redirect("console:two-factor")
    pending = None
    if device is None:
        pending = _unconfirmed_device(user)
        if request.method == "POST" and form.is_valid():
            allowed, _ = pending.verify_is_allowed()
            if allowed and pending.verify_token(form.cleaned_data["code"]):
                pending.confirmed = True
                pending.save(update_fields=["confirmed"])
                otp_login(request, pending)
                audit_record(action="totp.enroll", actor=user.get_username(), target=user.get_username())
                messages.success(request, "Done: signing in now asks for a code from your authenticator app.")
                return redirect("console:two-factor")
            form.add_error("code", "That code is not right; check the time on your phone and try again.")
    context = {
        "form": form,
        "device": device,
        "required": required,
        "memberships": Membership.objects.filter(user=user).select_related("organization"),
        **(_qr_context(pending) if pending is not None else {}),
    }
    return render(request, "console/two_factor.html", context)


def lockout_response(request: HttpRequest, *args) -> HttpResponse:
    """What a locked-out sign-in gets (django-axes calls this): the login page, saying why."""
    minutes = max(1, round(float(settings.AXES_COOLOFF_TIME) * 60))
    context = {
        "form": SignInForm(request),
        "locked_message": LOCKED_MESSAGE.format(minutes=minutes),
        "next": request.POST.get("next", "") if request.method == "POST" else "",
        **_sso_context(request),
    }
    return render(request, "console/login.html", context, status=429)
