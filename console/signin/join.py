"""The page an invitation link opens: sign in (or create an account) and join."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_http_methods

from console import services
from console.middleware import SESSION_KEY
from console.signin.forms import JoinSignupForm
from console.signin.invitations import invitation_accept, invitation_by_token
from console.signin.oidc import SIGNIN_METHOD_KEY, sso_enabled
from console.signin.policy import policy_for


@require_http_methods(["GET", "POST"])
def invitation_join(request: HttpRequest, token: str) -> HttpResponse:
    invitation = invitation_by_token(token)
    if invitation is None:
        return render(request, "console/invitation_join.html", {"invalid": True}, status=404)
    org = invitation.organization
    sso_only = policy_for(org).require_sso
    here = request.get_full_path()
    signup = None if sso_only else JoinSignupForm(initial={"email": invitation.email})
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "accept" and request.user.is_authenticated:
            return _accepted(request, token=token, user=request.user)
        if action == "signup" and not request.user.is_authenticated and not sso_only:
            signup = JoinSignupForm(request.POST)
            if signup.is_valid():
                data = signup.cleaned_data
                try:
                    with transaction.atomic():
                        user = services.user_create(
                            username=data["username"], email=data["email"], password=data["password1"]
                        )
                        membership = invitation_accept(token=token, user=user)
                except ValidationError as exc:
                    signup.add_error(None, exc.messages)
                else:
                    auth_login(request, user, backend="console.signin.backends.PasswordBackend")
                    request.session[SIGNIN_METHOD_KEY] = "password"
                    request.session[SESSION_KEY] = membership.organization_id
                    messages.success(request, f"Welcome to {org.name}.")
                    return redirect("console:home")
    context = {
        "invitation": invitation,
        "signup": signup,
        "sso_only": sso_only,
        "sso_enabled": sso_enabled(),
        "sso_label": settings.GATEHOUSE_SIGNIN["OIDC_BUTTON_LABEL"],
        "login_url": f"{reverse('console:login')}?{urlencode({'next': here})}",
        "sso_url": f"{reverse('console:oidc-start')}?{urlencode({'next': here})}",
    }
    return render(request, "console/invitation_join.html", context)


def _accepted(request: HttpRequest, *, token: str, user) -> HttpResponse:
    try:
        membership = invitation_accept(token=token, user=user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("console:home")
    request.session[SESSION_KEY] = membership.organization_id
    messages.success(request, f"You joined {membership.organization.name} as {membership.get_role_display()}.")
    return redirect("console:home")
