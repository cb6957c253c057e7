"""The console shell: home and the organization switcher."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from audit.facade import integrity_tile
from budgets.facade import spend_summary
from console.access import (
    HtmxHttpRequest,
    organization_required,
)
from console.forms import (
    OrganizationSwitchForm,
)
from console.middleware import SESSION_KEY
from console.models import ApiKey, Membership, Role, Team
from providers.facade import model_count

KEYS_PER_PAGE = 50


@organization_required
def home(request: HtmxHttpRequest) -> HttpResponse:
    org = request.organization
    member = request.membership.role == Role.MEMBER
    keys = ApiKey.objects.filter(organization=org)
    if member:
        keys = keys.filter(user=request.user)
    now = timezone.now()
    key_counts = keys.aggregate(
        total=Count("id"),
        active=Count("id", filter=Q(revoked_at__isnull=True) & (Q(expires_at__isnull=True) | Q(expires_at__gt=now))),
    )
    spend = spend_summary(
        organization_id=org.id, since=now - timedelta(days=30), user_id=request.user.id if member else None
    )
    context = {
        "role": request.membership.role,
        "gateway_url": request.build_absolute_uri("/v1"),
        "team_count": Team.objects.filter(organization=org).count(),
        "member_count": Membership.objects.filter(organization=org).count(),
        "key_counts": key_counts,
        "model_count": model_count(),
        "spend": spend,
        "integrity": None if member else integrity_tile(organization_id=org.id),
    }
    return render(request, "console/home.html", context)


@login_required
@require_POST
def organization_switch(request: HtmxHttpRequest) -> HttpResponse:
    form = OrganizationSwitchForm(request.POST, user=request.user)
    if not form.is_valid():
        raise PermissionDenied("You are not a member of that organization.")
    org = form.cleaned_data["organization"]
    request.session[SESSION_KEY] = org.id
    messages.success(request, f"Now working in {org.name}.")
    return redirect("console:home")
