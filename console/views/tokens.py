"""Console page for management-API tokens: issue (role and expiry, secret shown once), revoke.

Every member may hold tokens acting as themselves with at most their own role;
owners and admins see and revoke every token of the organization.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from console import services
from console.access import HtmxHttpRequest, is_manager, organization_required
from console.forms import AdminTokenForm, form_error_apply
from console.models import AdminToken
from console.views.once import secret_stash, secret_take

TOKENS_PER_PAGE = 50


def _tokens_visible(request: HtmxHttpRequest) -> QuerySet[AdminToken]:
    tokens = AdminToken.objects.filter(organization=request.organization).select_related("user")
    if not is_manager(request):
        tokens = tokens.filter(user=request.user)
    return tokens


@organization_required
@require_http_methods(["GET", "POST"])
def token_list(request: HtmxHttpRequest) -> HttpResponse:
    form = AdminTokenForm(request.POST or None, role=request.membership.role)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        days = data["expires_in_days"]
        try:
            issued = services.admin_token_create(
                organization=request.organization,
                user=request.user,
                name=data["name"],
                role=data["role"],
                expires_at=timezone.now() + timedelta(days=days) if days else None,
                actor=request.user,
            )
        except ValidationError as exc:
            form_error_apply(form, exc)
        else:
            secret_stash(request, kind="token", pk=issued.token.pk, secret=issued.secret)
            return redirect("console:token-created", pk=issued.token.pk)
    tokens = _tokens_visible(request).order_by("-created_at", "-id")
    page = Paginator(tokens, TOKENS_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "form": form,
        "page": page,
        "can_manage": is_manager(request),
        "api_url": request.build_absolute_uri("/api/v1/"),
    }
    return render(request, "console/token_list.html", context)


@organization_required
def token_created(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    token = get_object_or_404(_tokens_visible(request), pk=pk)
    secret = secret_take(request, kind="token", pk=token.pk)
    response = render(
        request,
        "console/token_created.html",
        {"token": token, "secret": secret, "api_url": request.build_absolute_uri("/api/v1/")},
    )
    response["Cache-Control"] = "no-store"
    return response


@organization_required
@require_http_methods(["GET", "POST"])
def token_revoke(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    token = get_object_or_404(_tokens_visible(request), pk=pk)
    if token.user_id != request.user.id and not is_manager(request):
        raise PermissionDenied("You cannot revoke this token.")
    if request.method == "POST":
        services.admin_token_revoke(token=token, actor=request.user)
        messages.success(request, f"Token {token.name} ({token.prefix}…) revoked; calls with it get 401 from now on.")
        return redirect("console:token-list")
    return render(
        request,
        "console/confirm.html",
        {
            "title": f"Revoke API token {token.name}?",
            "message": f"Scripts using {token.prefix}… get 401 at once. A revoked token cannot be restored.",
            "action": reverse("console:token-revoke", args=[token.pk]),
            "confirm_label": "Revoke token",
            "cancel_url": reverse("console:token-list"),
        },
    )
