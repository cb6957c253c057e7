"""Console pages for teams and their members."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, QuerySet
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from console import services
from console.access import (
    HtmxHttpRequest,
    is_manager,
    manager_required,
    organization_required,
    render_page,
)
from console.forms import (
    TeamForm,
    TeamMemberAddForm,
    form_error_apply,
)
from console.models import Organization, Team

KEYS_PER_PAGE = 50


def _teams(org: Organization) -> QuerySet[Team]:
    return Team.objects.filter(organization=org).annotate(
        member_count=Count("members", distinct=True), key_count=Count("api_keys", distinct=True)
    )


@organization_required
@require_http_methods(["GET", "POST"])
def team_list(request: HtmxHttpRequest) -> HttpResponse:
    org = request.organization
    form = TeamForm()
    created = None
    if request.method == "POST":
        if not is_manager(request):
            raise PermissionDenied("Only owners and admins create teams.")
        form = TeamForm(request.POST)
        if form.is_valid():
            try:
                created = services.team_create(organization=org, actor=request.user, **form.cleaned_data)
            except ValidationError as exc:
                form_error_apply(form, exc)
            else:
                if not request.htmx:
                    messages.success(request, f"Team {created.name} created.")
                    return redirect("console:team-list")
                form = TeamForm()
    context = {"teams": _teams(org), "form": form, "created": created, "can_manage": is_manager(request)}
    return render_page(request, "console/team_list.html", "teams", context)


@organization_required
def team_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    team = get_object_or_404(Team, pk=pk, organization=request.organization)
    context = {
        "team": team,
        "members": team.members.order_by("username"),
        "keys": team.api_keys.select_related("user").order_by("-created_at")[:20],
        "add_form": TeamMemberAddForm(organization=request.organization, team=team),
        "can_manage": is_manager(request),
    }
    return render(request, "console/team_detail.html", context)


@manager_required
@require_http_methods(["GET", "POST"])
def team_edit(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    team = get_object_or_404(Team, pk=pk, organization=request.organization)
    form = TeamForm(initial={"name": team.name, "description": team.description})
    if request.method == "POST":
        form = TeamForm(request.POST)
        if form.is_valid():
            try:
                services.team_update(team=team, actor=request.user, **form.cleaned_data)
            except ValidationError as exc:
                form_error_apply(form, exc)
            else:
                messages.success(request, f"Team {team.name} saved.")
                return redirect("console:team-detail", pk=team.pk)
    return render(request, "console/team_form.html", {"team": team, "form": form})


@manager_required
@require_http_methods(["GET", "POST"])
def team_delete(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    team = get_object_or_404(Team, pk=pk, organization=request.organization)
    if request.method == "POST":
        name = team.name
        services.team_delete(team=team, actor=request.user)
        messages.success(request, f"Team {name} deleted.")
        return redirect("console:team-list")
    return render(
        request,
        "console/confirm.html",
        {
            "title": f"Delete team {team.name}?",
            "message": "Its keys stay valid but lose their team. Members keep their accounts.",
            "action": reverse("console:team-delete", args=[team.pk]),
            "confirm_label": "Delete team",
            "cancel_url": reverse("console:team-detail", args=[team.pk]),
        },
    )


@manager_required
@require_POST
def team_member_add(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    team = get_object_or_404(Team, pk=pk, organization=request.organization)
    form = TeamMemberAddForm(request.POST, organization=request.organization, team=team)
    if form.is_valid():
        user = form.cleaned_data["user"]
        services.team_member_add(team=team, user=user, actor=request.user)
        messages.success(request, f"{user.get_username()} added to {team.name}.")
    else:
        messages.error(request, "Choose a member of this organization who is not in the team yet.")
    return redirect("console:team-detail", pk=team.pk)


@manager_required
@require_POST
def team_member_remove(request: HtmxHttpRequest, pk: int, user_id: int) -> HttpResponse:
    team = get_object_or_404(Team, pk=pk, organization=request.organization)
    user = get_object_or_404(team.members.all(), pk=user_id)
    services.team_member_remove(team=team, user=user, actor=request.user)
    messages.success(request, f"{user.get_username()} removed from {team.name}.")
    return redirect("console:team-detail", pk=team.pk)
