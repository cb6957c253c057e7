"""The console shell and the tenancy pages: home, organization switcher, teams,
members and keys.

Views stay thin: reads are querysets scoped to `request.organization`, writes go
through `console.services`. Owners and admins manage everything; members manage
their own keys; finance reads.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import wraps

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.middleware import HtmxDetails

from audit.events import audit_record
from budgets.filters import UsageFilters
from budgets.selectors import usage_summary, usage_totals
from console import services
from console.forms import (
    ApiKeyForm,
    KeyStatusFilterForm,
    MemberInviteForm,
    MemberRoleForm,
    OrganizationSwitchForm,
    TeamForm,
    TeamMemberAddForm,
    form_error_apply,
)
from console.middleware import SESSION_KEY
from console.models import ApiKey, Membership, Organization, Role, Team
from providers.models import Lifecycle, ModelCard

KEYS_PER_PAGE = 50


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails
    organization: Organization | None
    membership: Membership | None


# ---- access ------------------------------------------------------------------


def organization_required(view: Callable) -> Callable:
    """Signed in and acting in an organization; otherwise a friendly page."""

    @login_required
    @wraps(view)
    def wrapped(request: HtmxHttpRequest, *args, **kwargs) -> HttpResponse:
        if request.organization is None:
            return render(request, "console/no_organization.html")
        return view(request, *args, **kwargs)

    return wrapped


def role_required(*roles: str) -> Callable[[Callable], Callable]:
    """Only these roles may use the view; everyone else gets 403."""

    def decorator(view: Callable) -> Callable:
        @organization_required
        @wraps(view)
        def wrapped(request: HtmxHttpRequest, *args, **kwargs) -> HttpResponse:
            if request.membership.role not in roles:
                raise PermissionDenied("Your role does not allow this.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


manager_required = role_required(Role.OWNER, Role.ADMIN)


def is_manager(request: HtmxHttpRequest) -> bool:
    return request.membership is not None and request.membership.can_manage


def wants_partial(request: HtmxHttpRequest) -> bool:
    """An htmx swap asks for a fragment; a history restore after a cache miss needs the page."""
    return bool(request.htmx) and not request.htmx.history_restore_request


def render_page(request: HtmxHttpRequest, template: str, partial: str, context: dict) -> HttpResponse:
    """The page, or only its `partial` for an htmx swap (one template, `page.html#partial`)."""
    response = render(request, f"{template}#{partial}" if wants_partial(request) else template, context)
    patch_vary_headers(response, ("HX-Request",))
    return response


# ---- shell -------------------------------------------------------------------


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
    spend = usage_totals(
        usage_summary(
            organization_id=org.id,
            group_by="day",
            since=now - timedelta(days=30),
            filters=UsageFilters(user=request.user.id) if member else None,
        )
    )
    context = {
        "team_count": Team.objects.filter(organization=org).count(),
        "member_count": Membership.objects.filter(organization=org).count(),
        "key_counts": key_counts,
        "model_count": ModelCard.objects.count(),
        "spend": spend,
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


# ---- teams -------------------------------------------------------------------


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
            name = form.cleaned_data["name"]
            if Team.objects.filter(organization=team.organization, name=name).exclude(pk=team.pk).exists():
                form.add_error("name", f"A team named {name!r} exists already.")
            else:
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


def _team_member_change(*, team: Team, user: AbstractBaseUser, add: bool, actor: AbstractBaseUser) -> None:
    # No team-membership service exists yet; this is the one write that lives here.
    with transaction.atomic():
        if add:
            team.members.add(user)
        else:
            team.members.remove(user)
        audit_record(
            action="team.member_add" if add else "team.member_remove",
            organization_id=team.organization_id,
            actor=actor.get_username(),
            target=team.name,
            data={"user": user.get_username()},
        )


@manager_required
@require_POST
def team_member_add(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    team = get_object_or_404(Team, pk=pk, organization=request.organization)
    form = TeamMemberAddForm(request.POST, organization=request.organization, team=team)
    if form.is_valid():
        user = form.cleaned_data["user"]
        _team_member_change(team=team, user=user, add=True, actor=request.user)
        messages.success(request, f"{user.get_username()} added to {team.name}.")
    else:
        messages.error(request, "Choose a member of this organization who is not in the team yet.")
    return redirect("console:team-detail", pk=team.pk)


@manager_required
@require_POST
def team_member_remove(request: HtmxHttpRequest, pk: int, user_id: int) -> HttpResponse:
    team = get_object_or_404(Team, pk=pk, organization=request.organization)
    user = get_object_or_404(team.members.all(), pk=user_id)
    _team_member_change(team=team, user=user, add=False, actor=request.user)
    messages.success(request, f"{user.get_username()} removed from {team.name}.")
    return redirect("console:team-detail", pk=team.pk)


# ---- members -----------------------------------------------------------------


def _role_choices(request: HtmxHttpRequest) -> list[tuple[str, str]]:
    """Only an owner grants the owner role."""
    if request.membership.role == Role.OWNER:
        return list(Role.choices)
    return [choice for choice in Role.choices if choice[0] != Role.OWNER]


def _can_touch(request: HtmxHttpRequest, membership: Membership) -> bool:
    """Admins manage everyone but owners; owners manage everyone."""
    if request.membership.role == Role.OWNER:
        return True
    return membership.role != Role.OWNER


@organization_required
def member_list(request: HtmxHttpRequest) -> HttpResponse:
    memberships = (
        Membership.objects.filter(organization=request.organization).select_related("user").order_by("user__username")
    )
    rows = [{"membership": m, "can_touch": is_manager(request) and _can_touch(request, m)} for m in memberships]
    return render(
        request,
        "console/member_list.html",
        {"rows": rows, "can_manage": is_manager(request), "role_choices": _role_choices(request)},
    )


@manager_required
@require_http_methods(["GET", "POST"])
def member_invite(request: HtmxHttpRequest) -> HttpResponse:
    org = request.organization
    can_grant_owner = request.membership.role == Role.OWNER
    form = MemberInviteForm(can_grant_owner=can_grant_owner)
    if request.method == "POST":
        form = MemberInviteForm(request.POST, can_grant_owner=can_grant_owner)
        if form.is_valid():
            data = form.cleaned_data
            User = get_user_model()
            try:
                with transaction.atomic():
                    user = User.objects.filter(username=data["username"]).first()
                    if user is not None and Membership.objects.filter(organization=org, user=user).exists():
                        raise ValidationError({"username": f"{user.get_username()} is a member already."})
                    if user is None:
                        user = services.user_create(
                            username=data["username"],
                            email=data["email"],
                            password=data["password"] or None,
                            first_name=data["first_name"],
                            last_name=data["last_name"],
                        )
                    services.membership_set(organization=org, user=user, role=data["role"], actor=request.user)
            except ValidationError as exc:
                form_error_apply(form, exc)
            else:
                messages.success(request, f"{user.get_username()} joined {org.name} as {data['role']}.")
                return redirect("console:member-list")
    return render(request, "console/member_form.html", {"form": form})


@manager_required
@require_POST
def member_role(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    membership = get_object_or_404(
        Membership.objects.select_related("user", "organization"), pk=pk, organization=request.organization
    )
    can_grant_owner = request.membership.role == Role.OWNER
    if not _can_touch(request, membership):
        raise PermissionDenied("Only an owner changes another owner's role.")
    form = MemberRoleForm(request.POST, can_grant_owner=can_grant_owner)
    error = ""
    if form.is_valid():
        try:
            membership = services.membership_set(
                organization=request.organization,
                user=membership.user,
                role=form.cleaned_data["role"],
                actor=request.user,
            )
        except ValidationError as exc:
            error = " ".join(exc.messages)
            membership.refresh_from_db()
    else:
        error = "Choose one of the offered roles."
    if request.htmx:
        row = {
            "membership": membership,
            "can_touch": _can_touch(request, membership),
            "error": error,
            "saved": not error,
        }
        return render(
            request,
            "console/member_list.html#member-row",
            {"row": row, "can_manage": True, "role_choices": _role_choices(request)},
        )
    if error:
        messages.error(request, error)
    else:
        messages.success(request, f"{membership.user.get_username()} is now {membership.get_role_display()}.")
    return redirect("console:member-list")


@manager_required
@require_http_methods(["GET", "POST"])
def member_remove(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    membership = get_object_or_404(
        Membership.objects.select_related("user", "organization"), pk=pk, organization=request.organization
    )
    if not _can_touch(request, membership):
        raise PermissionDenied("Only an owner removes another owner.")
    username = membership.user.get_username()
    error = ""
    if request.method == "POST":
        try:
            services.membership_remove(membership=membership, actor=request.user)
        except ValidationError as exc:
            error = " ".join(exc.messages)
        else:
            messages.success(request, f"{username} no longer belongs to {request.organization.name}.")
            if membership.user_id == request.user.id:
                request.session.pop(SESSION_KEY, None)
                return redirect("console:home")
            return redirect("console:member-list")
    return render(
        request,
        "console/confirm.html",
        {
            "title": f"Remove {username} from {request.organization.name}?",
            "message": "They lose access to this organization's console. Their keys keep working until revoked.",
            "error": error,
            "action": reverse("console:member-remove", args=[membership.pk]),
            "confirm_label": "Remove member",
            "cancel_url": reverse("console:member-list"),
        },
    )


# ---- keys --------------------------------------------------------------------


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
    model_names = list(
        ModelCard.objects.exclude(lifecycle=Lifecycle.RETIRED).order_by("name").values_list("name", flat=True)
    )
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
                response = render(request, "console/key_created.html", {"key": issued.key, "secret": issued.secret})
                response["Cache-Control"] = "no-store"
                return response
    return render(request, "console/key_form.html", {"form": form})


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
