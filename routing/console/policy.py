"""Console pages for the compliance matrix, routing settings and policy history."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from console.access import HtmxHttpRequest, manager_required, organization_required, render_page
from console.forms import form_error_apply
from routing import services
from routing.console.common import announce, head_context
from routing.console.forms import SettingsForm
from routing.models import PolicyVersion
from routing.selectors import deployments_visible, model_names, policy_versions

VERSIONS_PER_PAGE = 30


# ---- compliance matrix -------------------------------------------------------------


def _matrix_context(request: HtmxHttpRequest) -> dict:
    context = head_context(request)
    document = context["document"]
    classes = [c["name"] for c in document["data_classes"]]
    unlisted = set(services.unlisted_classes(document))
    matrix = document["matrix"]
    deployments = list(deployments_visible(organization=request.organization).filter(is_active=True))
    names = sorted(model_names(organization=request.organization) & ({d.model.name for d in deployments} | set(matrix)))
    subjects = [(name, "model") for name in names]
    subjects += [(d.name, "deployment") for d in sorted(deployments, key=lambda d: d.name) if d.name in matrix]
    rows = []
    for subject, kind in subjects:
        listed = subject in matrix
        approved = set(matrix[subject]) if listed else unlisted
        rows.append(
            {"subject": subject, "kind": kind, "listed": listed, "cells": [(cls, cls in approved) for cls in classes]}
        )
    extra = sorted({d.name for d in deployments} - set(matrix))
    requirements = document.get("requirements") or {}
    requirement_rows = [(cls, requirements.get(cls, [])) for cls in classes]
    return {
        **context,
        "classes": classes,
        "rows": rows,
        "deployment_choices": extra,
        "requirement_rows": requirement_rows,
    }


@organization_required
def matrix(request: HtmxHttpRequest) -> HttpResponse:
    return render_page(request, "routing/matrix.html", "grid", _matrix_context(request))


@manager_required
@require_POST
def matrix_toggle(request: HtmxHttpRequest) -> HttpResponse:
    subject = request.POST.get("subject", "").strip()
    data_class = request.POST.get("data_class", "")
    approved = request.POST.get("approved") == "1"
    error = ""
    try:
        version = services.matrix_set(
            organization=request.organization,
            actor=request.user,
            subject=subject,
            data_class=data_class,
            approved=approved,
        )
    except ValidationError as exc:
        error = "; ".join(exc.messages)
    else:
        if not request.htmx:
            announce(request, version)
    if not request.htmx:
        return redirect("routing:matrix")
    return render_page(request, "routing/matrix.html", "grid", {**_matrix_context(request), "error": error})


@manager_required
@require_POST
def matrix_unlist(request: HtmxHttpRequest) -> HttpResponse:
    try:
        version = services.matrix_unlist(
            organization=request.organization, actor=request.user, subject=request.POST.get("subject", "")
        )
    except ValidationError as exc:
        messages.error(request, "; ".join(exc.messages))
    else:
        announce(request, version)
    return redirect("routing:matrix")


@manager_required
@require_POST
def requirements_edit(request: HtmxHttpRequest) -> HttpResponse:
    """Replace one class's attribute rules (one per line)."""
    lines = [line.strip() for line in request.POST.get("requirements", "").splitlines() if line.strip()]
    try:
        version = services.requirements_set(
            organization=request.organization,
            actor=request.user,
            data_class=request.POST.get("data_class", ""),
            requirements=lines,
        )
    except ValidationError as exc:
        messages.error(request, "; ".join(exc.messages))
    else:
        announce(request, version)
    return redirect(reverse("routing:matrix") + "#requirements")


# ---- settings ----------------------------------------------------------------------


@organization_required
@require_http_methods(["GET", "POST"])
def settings_edit(request: HtmxHttpRequest) -> HttpResponse:
    context = head_context(request)
    classes = [c["name"] for c in context["document"]["data_classes"]]
    form = SettingsForm(initial=SettingsForm.initial_for(context["document"]), classes=classes)
    if request.method == "POST":
        if not context["can_manage"]:
            raise PermissionDenied("Only owners and admins change routing settings.")
        form = SettingsForm(request.POST, classes=classes)
        if form.is_valid():
            try:
                version = services.policy_settings_put(
                    organization=request.organization,
                    actor=request.user,
                    summary="Edit routing settings",
                    **form.values(),
                )
            except ValidationError as exc:
                form_error_apply(form, exc)
            else:
                announce(request, version)
                return redirect("routing:settings")
    return render(request, "routing/settings.html", {**context, "form": form})


# ---- history ---------------------------------------------------------------------


@organization_required
def history(request: HtmxHttpRequest) -> HttpResponse:
    page = Paginator(policy_versions(organization=request.organization), VERSIONS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    return render(request, "routing/history.html", {**head_context(request), "page": page})


def _version(request: HtmxHttpRequest, number: int) -> PolicyVersion:
    return get_object_or_404(PolicyVersion, organization=request.organization, number=number)


@organization_required
def version_detail(request: HtmxHttpRequest, number: int) -> HttpResponse:
    version = _version(request, number)
    context = {
        **head_context(request),
        "version": version,
        "can_decide": head_context(request)["can_manage"] and version.author_id != request.user.pk,
    }
    return render(request, "routing/version_detail.html", context)


@manager_required
@require_POST
def version_decide(request: HtmxHttpRequest, number: int) -> HttpResponse:
    version = _version(request, number)
    try:
        if request.POST.get("decision") == "approve":
            services.policy_approve(version=version, actor=request.user)
            messages.success(request, f"v{number} approved: it is live.")
        else:
            services.policy_reject(version=version, actor=request.user, note=request.POST.get("note", ""))
            messages.success(request, f"v{number} rejected.")
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, "; ".join(getattr(exc, "messages", [str(exc)])))
    return redirect("routing:version-detail", number=number)


@manager_required
@require_http_methods(["GET", "POST"])
def version_rollback(request: HtmxHttpRequest, number: int) -> HttpResponse:
    version = _version(request, number)
    error = ""
    if request.method == "POST":
        try:
            created = services.policy_rollback(version=version, actor=request.user)
        except ValidationError as exc:
            error = "; ".join(exc.messages)
        else:
            announce(request, created)
            return redirect("routing:version-detail", number=created.number)
    return render(
        request,
        "console/confirm.html",
        {
            "title": f"Roll back to v{number}?",
            "message": f"This records a new version with the routes, rules and matrix of v{number}"
            " (by " + version.author_name + f", {version.created_at:%Y-%m-%d %H:%M}). "
            "Nothing is deleted: the versions in between stay in the history.",
            "action": reverse("routing:version-rollback", args=[number]),
            "confirm_label": "Roll back",
            "cancel_url": reverse("routing:version-detail", args=[number]),
            "error": error,
        },
    )
