"""Console pages for virtual keys: list, create (secret shown once), revoke."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Q, QuerySet
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from console import services
from console.access import (
    HtmxHttpRequest,
    is_manager,
    organization_required,
    render_page,
    role_required,
)
from console.forms import (
    ApiKeyForm,
    KeyStatusFilterForm,
    form_error_apply,
)
from console.models import ApiKey, Role, Team
from console.views.once import secret_stash, secret_take
from providers.facade import model_names as registry_model_names

KEYS_PER_PAGE = 50


def _keys_visible(request: HtmxHttpRequest) -> QuerySet[ApiKey]:
    keys = ApiKey.objects.filter(organization=request.organization)
    if request.membership.role == Role.MEMBER:
        keys = keys.filter(user=request.user)
    return keys


def _key_writable(request: HtmxHttpRequest, key: ApiKey) -> bool:
    if is_manager(request):
        return True
    return request.membership.role == Role.MEMBER and key.user_id == request.user.id


@organization_required
def key_list(request: HtmxHttpRequest) -> HttpResponse:
    filters = KeyStatusFilterForm(request.GET)
    keys = _keys_visible(request).select_related("user", "team")
    status = filters.cleaned_data.get("status") if filters.is_valid() else ""
    now = timezone.now()
    if status == "active":
        keys = keys.filter(revoked_at__isnull=True).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
    elif status == "revoked":
        keys = keys.filter(revoked_at__isnull=False)
    elif status == "expired":
        keys = keys.filter(revoked_at__isnull=True, expires_at__lte=now)
    page = Paginator(keys.order_by("-created_at", "-id"), KEYS_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "filters": filters,
        "page": page,
        "status": status,
        "can_write": request.membership.role != Role.FINANCE,
        "can_manage": is_manager(request),
    }
    return render_page(request, "console/key_list.html", "key-results", context)


@role_required(Role.OWNER, Role.ADMIN, Role.MEMBER)
@require_http_methods(["GET", "POST"])
def key_create(request: HtmxHttpRequest) -> HttpResponse:
    org = request.organization
    member = request.membership.role == Role.MEMBER
    teams = Team.objects.filter(organization=org)
    if member:
        teams = teams.filter(members=request.user)
    model_names = registry_model_names(organization_id=org.id)
    kwargs = {
        "organization": org,
        "model_names": model_names,
        "teams": teams,
        "for_user": request.user if member else None,
    }
    form = ApiKeyForm(**kwargs)
    if request.method == "POST":
        form = ApiKeyForm(request.POST, **kwargs)
        if form.is_valid():
            data = dict(form.cleaned_data)
            user = request.user if member else data.pop("user")
            data.pop("user", None)
            try:
                issued = services.api_key_create(organization=org, user=user, actor=request.user, **data)
            except ValidationError as exc:
                form_error_apply(form, exc)
            else:
                secret_stash(request, kind="key", pk=issued.key.pk, secret=issued.secret)
                return redirect("console:key-created", pk=issued.key.pk)
    return render(request, "console/key_form.html", {"form": form})


@organization_required
def key_created(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The new key's secret, once; a refresh shows the key without it and creates nothing."""
    key = get_object_or_404(_keys_visible(request).select_related("user", "team"), pk=pk)
    secret = secret_take(request, kind="key", pk=key.pk)
    response = render(request, "console/key_created.html", {"key": key, "secret": secret})
    response["Cache-Control"] = "no-store"
    return response


@organization_required
def key_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    key = get_object_or_404(_keys_visible(request).select_related("user", "team", "created_by"), pk=pk)
    return render(request, "console/key_detail.html", {"key": key, "can_revoke": _key_writable(request, key)})


@role_required(Role.OWNER, Role.ADMIN, Role.MEMBER)
@require_http_methods(["GET", "POST"])
def key_revoke(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    key = get_object_or_404(_keys_visible(request).select_related("user", "team"), pk=pk)
    if not _key_writable(request, key):
        raise PermissionDenied("You cannot revoke this key.")
    if request.method == "POST":
        services.api_key_revoke(key=key, actor=request.user)
        if request.htmx:
            return render(
                request,
                "console/key_list.html#key-row",
                {"key": key, "can_manage": is_manager(request), "can_write": True},
            )
        messages.success(request, f"Key {key.name} ({key.prefix}…) revoked. Calls with it are refused from now on.")
        return redirect("console:key-detail", pk=key.pk)
    return render(
        request,
        "console/confirm.html",
        {
            "title": f"Revoke key {key.name}?",
            "message": f"Apps using {key.prefix}… get 401 at once. A revoked key cannot be restored.",
            "action": reverse("console:key-revoke", args=[key.pk]),
            "confirm_label": "Revoke key",
            "cancel_url": reverse("console:key-detail", args=[key.pk]),
        },
    )
