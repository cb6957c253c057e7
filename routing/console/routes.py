"""Console pages for routes and rules."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from console.access import HtmxHttpRequest, manager_required, organization_required, render_page
from console.forms import form_error_apply
from routing import services
from routing.console.common import announce, head_context
from routing.console.forms import RouteForm, RuleForm


def _find(items: list[dict], name: str) -> dict:
    for item in items:
        if item["name"] == name:
            return item
    raise Http404("No such entry in the current policy.")


@organization_required
def route_list(request: HtmxHttpRequest) -> HttpResponse:
    return render(request, "routing/route_list.html", head_context(request))


@manager_required
@require_http_methods(["GET", "POST"])
def route_edit(request: HtmxHttpRequest) -> HttpResponse:
    context = head_context(request)
    original = request.GET.get("name", "")
    route = _find(context["document"]["routes"], original) if original else None
    form = RouteForm(initial=RouteForm.initial_for(route) if route else {"kind": "standard", "strategy": "weighted"})
    if request.method == "POST":
        form = RouteForm(request.POST)
        if form.is_valid():
            try:
                version = services.route_put(
                    organization=request.organization, actor=request.user, route=form.route(), replaces=original
                )
            except ValidationError as exc:
                form_error_apply(form, exc)
            else:
                announce(request, version)
                return redirect("routing:route-list")
    return render(request, "routing/route_form.html", {**context, "form": form, "original": original})


@manager_required
@require_http_methods(["GET", "POST"])
def route_delete(request: HtmxHttpRequest) -> HttpResponse:
    name = request.GET.get("name", "")
    _find(head_context(request)["document"]["routes"], name)
    error = ""
    if request.method == "POST":
        try:
            version = services.route_remove(organization=request.organization, actor=request.user, name=name)
        except ValidationError as exc:
            error = "; ".join(exc.messages)
        else:
            announce(request, version)
            return redirect("routing:route-list")
    return render(
        request,
        "console/confirm.html",
        {
            "title": f"Remove route {name}?",
            "message": "Apps calling this name get 404 unless a model or the default route has it. "
            "Rules and fallbacks naming it must be changed first.",
            "action": reverse("routing:route-delete") + f"?name={name}",
            "confirm_label": "Remove route",
            "cancel_url": reverse("routing:route-list"),
            "error": error,
        },
    )


# ---- rules -------------------------------------------------------------------


def _classes(document: dict) -> list[str]:
    return [c["name"] for c in document["data_classes"]]


@organization_required
def rule_list(request: HtmxHttpRequest) -> HttpResponse:
    context = head_context(request)
    return render_page(request, "routing/rule_list.html", "rules", context)


@manager_required
@require_http_methods(["GET", "POST"])
def rule_edit(request: HtmxHttpRequest) -> HttpResponse:
    context = head_context(request)
    classes = _classes(context["document"])
    original = request.GET.get("name", "")
    rule = _find(context["document"]["rules"], original) if original else None
    form = RuleForm(initial=RuleForm.initial_for(rule) if rule else {"enabled": True}, classes=classes)
    if request.method == "POST":
        form = RuleForm(request.POST, classes=classes)
        if form.is_valid():
            try:
                version = services.rule_put(
                    organization=request.organization, actor=request.user, rule=form.rule(), replaces=original
                )
            except ValidationError as exc:
                form_error_apply(form, exc)
            else:
                announce(request, version)
                return redirect("routing:rule-list")
    return render(request, "routing/rule_form.html", {**context, "form": form, "original": original})


@manager_required
@require_POST
def rule_move(request: HtmxHttpRequest) -> HttpResponse:
    name = request.POST.get("name", "")
    offset = -1 if request.POST.get("direction") == "up" else 1
    error = ""
    try:
        version = services.rule_move(organization=request.organization, actor=request.user, name=name, offset=offset)
    except ValidationError as exc:
        error = "; ".join(exc.messages)
    else:
        if not request.htmx:
            announce(request, version)
    if not request.htmx:
        return redirect("routing:rule-list")
    return render_page(request, "routing/rule_list.html", "rules", {**head_context(request), "error": error})


@manager_required
@require_http_methods(["GET", "POST"])
def rule_delete(request: HtmxHttpRequest) -> HttpResponse:
    name = request.GET.get("name", "")
    _find(head_context(request)["document"]["rules"], name)
    if request.method == "POST":
        if not request.membership.can_manage:
            raise PermissionDenied
        version = services.rule_remove(organization=request.organization, actor=request.user, name=name)
        announce(request, version)
        return redirect("routing:rule-list")
    return render(
        request,
        "console/confirm.html",
        {
            "title": f"Remove rule {name}?",
            "message": "Requests it matched fall through to the next rule, or to the route their model names.",
            "action": reverse("routing:rule-delete") + f"?name={name}",
            "confirm_label": "Remove rule",
            "cancel_url": reverse("routing:rule-list"),
        },
    )
