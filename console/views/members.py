"""Console pages for the organization's users, their roles and the invitations that bring them in."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
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
)
from console.forms import (
    MemberRoleForm,
    form_error_apply,
)
from console.middleware import SESSION_KEY
from console.models import Invitation, Membership, Role
from console.signin import invitations
from console.signin.forms import InvitationForm

INVITATIONS_SHOWN = 50


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
    pending = []
    if is_manager(request):
        pending = [i for i in invitations.invitations_for(request.organization)[:INVITATIONS_SHOWN]]
    return render(
        request,
        "console/member_list.html",
        {
            "rows": rows,
            "can_manage": is_manager(request),
            "role_choices": _role_choices(request),
            "invitations": pending,
        },
    )


@manager_required
@require_http_methods(["GET", "POST"])
def member_invite(request: HtmxHttpRequest) -> HttpResponse:
    """Invite by e-mail with a role: the link is mailed and shown here once to copy."""
    org = request.organization
    can_grant_owner = request.membership.role == Role.OWNER
    form = InvitationForm(request.POST or None, can_grant_owner=can_grant_owner)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            issued = invitations.invitation_create(
                organization=org,
                email=data["email"],
                role=data["role"],
                actor=request.user,
                base_url=request.build_absolute_uri("/"),
                send=data["send_email"],
            )
        except ValidationError as exc:
            form_error_apply(form, exc)
        else:
            return render(request, "console/invitation_created.html", {"issued": issued})
    return render(request, "console/member_form.html", {"form": form})


@manager_required
@require_POST
def invitation_revoke(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    invitation = get_object_or_404(Invitation, pk=pk, organization=request.organization)
    try:
        invitations.invitation_revoke(invitation=invitation, actor=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"The invitation of {invitation.email} is revoked; its link no longer works.")
    return redirect("console:member-list")


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
