"""Console pages for budgets: the tree with utilization bars and inline editing,
a budget's period history and hold ledger, rate limits and alert settings.

Owners and admins edit; finance reads; members do not see budgets.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from budgets import services
from budgets.forms import AlertSettingsForm, BudgetEditForm, BudgetForm, RateLimitForm, StorePolicyForm
from budgets.models import AlertSettings, Budget, BudgetAlert, BudgetHold, RateLimit, StoreFailure, units_to_usd
from budgets.periods import zone_of
from budgets.selectors import budget_periods, budget_policy_of, budget_statuses, budget_tree
from console.forms import form_error_apply
from console.models import Role
from console.views import HtmxHttpRequest, is_manager, manager_required, render_page, role_required

spend_readers_required = role_required(Role.OWNER, Role.ADMIN, Role.FINANCE)
HOLDS_SHOWN = 50


def _budget(request: HtmxHttpRequest, pk: int) -> Budget:
    return get_object_or_404(Budget.objects.select_related("organization"), pk=pk, organization=request.organization)


def _depth(request: HtmxHttpRequest) -> int:
    """How deep in the tree the row sits (for its indentation when swapped in alone)."""
    try:
        return min(4, max(0, int(request.GET.get("depth", 0))))
    except ValueError:
        return 0


def _row(request: HtmxHttpRequest, budget: Budget, **extra) -> HttpResponse:
    status = budget_statuses(budgets=[budget])[budget.id]
    context = {
        "status": status,
        "can_manage": is_manager(request),
        "zone": zone_of(budget.organization.time_zone),
        "depth": _depth(request),
        **extra,
    }
    return render(request, "budgets/budget_tree.html#budget-row", context)


@spend_readers_required
def budget_tree_view(request: HtmxHttpRequest) -> HttpResponse:
    org = request.organization
    manager = is_manager(request)
    context = {
        "tree": budget_tree(organization=org),
        "can_manage": manager,
        "zone": zone_of(org.time_zone),
        "form": BudgetForm(organization=org) if manager else None,
        "limit_form": RateLimitForm(organization=org) if manager else None,
    }
    return render_page(request, "budgets/budget_tree.html", "budget-tree", context)


@manager_required
@require_POST
def budget_create(request: HtmxHttpRequest) -> HttpResponse:
    org = request.organization
    form = BudgetForm(request.POST, organization=org)
    if form.is_valid():
        try:
            budget = services.budget_create(organization=org, actor=request.user, **form.service_fields())
        except ValidationError as exc:
            form_error_apply(form, exc)
        else:
            messages.success(request, f"Budget {budget.name} created.")
            return redirect("budgets:budget-tree")
    context = {
        "tree": budget_tree(organization=org),
        "can_manage": True,
        "zone": zone_of(org.time_zone),
        "form": form,
        "limit_form": RateLimitForm(organization=org),
    }
    return render(request, "budgets/budget_tree.html", context, status=400)


@spend_readers_required
def budget_row(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    return _row(request, _budget(request, pk))


@manager_required
@require_http_methods(["GET", "POST"])
def budget_edit(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    budget = _budget(request, pk)
    initial = {
        "amount": f"{budget.amount.normalize():f}",
        "hard": budget.hard,
        "thresholds": ", ".join(str(t) for t in budget.thresholds),
    }
    form = BudgetEditForm(request.POST if request.method == "POST" else None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.budget_update(budget=budget, actor=request.user, **form.cleaned_data)
        except ValidationError as exc:
            form_error_apply(form, exc)
        else:
            if request.htmx:
                return _row(request, budget, saved=True)
            messages.success(request, f"Budget {budget.name} saved.")
            return redirect("budgets:budget-tree")
    status = budget_statuses(budgets=[budget])[budget.id]
    context = {"status": status, "form": form, "zone": zone_of(budget.organization.time_zone), "depth": _depth(request)}
    return render(request, "budgets/budget_tree.html#budget-edit-row", context, status=400 if form.errors else 200)


@manager_required
@require_POST
def budget_archive(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    budget = _budget(request, pk)
    services.budget_archive(budget=budget, actor=request.user)
    messages.success(request, f"Budget {budget.name} archived; its history stays readable.")
    return redirect("budgets:budget-tree")


@spend_readers_required
def budget_history(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    budget = get_object_or_404(Budget.objects.select_related("organization"), pk=pk, organization=request.organization)
    periods = budget_periods(budget=budget)
    current = periods[0]
    ident = f"{budget.id}:{int(current.period_start.timestamp())}"
    holds = [
        hold
        for hold in BudgetHold.objects.filter(
            organization_id=budget.organization_id, created_at__gte=current.period_start
        ).order_by("-created_at")[:2000]
        if ident in hold.counters
    ][:HOLDS_SHOWN]
    for hold in holds:
        hold.amount = units_to_usd(hold.amount_units)
        hold.actual = units_to_usd(hold.actual_units) if hold.actual_units is not None else None
    context = {
        "budget": budget,
        "periods": periods,
        "holds": holds,
        "zone": zone_of(budget.organization.time_zone),
        "alerts": BudgetAlert.objects.filter(budget=budget).order_by("-created_at")[:20],
    }
    return render(request, "budgets/budget_history.html", context)


@manager_required
@require_POST
def rate_limit_set(request: HtmxHttpRequest) -> HttpResponse:
    org = request.organization
    form = RateLimitForm(request.POST, organization=org)
    if form.is_valid():
        fields = form.service_fields()
        existing = RateLimit.objects.filter(scope=fields["scope"], scope_id=fields["scope_id"]).first()
        if existing is not None and existing.organization_id != org.id:
            raise PermissionDenied("That target is not in this organization.")
        try:
            limit = services.rate_limit_set(organization=org, actor=request.user, **fields)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, f"Rate limit {limit.name} saved.")
    else:
        messages.error(request, "Choose a target and set requests or tokens per minute.")
    return redirect("budgets:budget-tree")


@manager_required
@require_POST
def rate_limit_delete(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    limit = get_object_or_404(RateLimit, pk=pk, organization=request.organization)
    services.rate_limit_delete(limit=limit, actor=request.user)
    messages.success(request, f"Rate limit {limit.name} removed.")
    return redirect("budgets:budget-tree")


@spend_readers_required
@require_http_methods(["GET", "POST"])
def alert_settings(request: HtmxHttpRequest) -> HttpResponse:
    org = request.organization
    current = AlertSettings.objects.filter(organization=org).first()
    initial = {
        "webhook_url": current.webhook_url if current else "",
        "emails": ", ".join(current.emails) if current else "",
    }
    form = AlertSettingsForm(initial=initial)
    generated = ""
    if request.method == "POST":
        if not is_manager(request):
            raise PermissionDenied("Only owners and admins change where alerts go.")
        form = AlertSettingsForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                current, generated = services.alert_settings_set(
                    organization=org,
                    actor=request.user,
                    webhook_url=data["webhook_url"],
                    webhook_secret=data["webhook_secret"] or None,
                    emails=data["emails"],
                )
            except ValidationError as exc:
                form_error_apply(form, exc)
            else:
                messages.success(request, "Alert settings saved.")
    policy = budget_policy_of(organization_id=org.id)
    context = {
        "form": form,
        "current": current,
        "generated": generated,
        "can_manage": is_manager(request),
        "policy_form": StorePolicyForm(initial={"on_store_failure": policy}),
        "policy": StoreFailure(policy).label,
    }
    response = render(request, "budgets/alert_settings.html", context)
    if generated:
        response["Cache-Control"] = "no-store"
    return response


@spend_readers_required
@require_POST
def alert_dismiss(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    alert = get_object_or_404(BudgetAlert, pk=pk, organization_id=request.organization.id)
    services.alert_dismiss(alert=alert, actor=request.user)
    if request.htmx:
        return HttpResponse("")
    target = request.POST.get("next") or ""
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = reverse("budgets:budget-tree")
    return redirect(target)


@manager_required
@require_POST
def store_policy(request: HtmxHttpRequest) -> HttpResponse:
    """Set what the organization's requests get when the budget store is unavailable."""
    form = StorePolicyForm(request.POST)
    if form.is_valid():
        services.budget_policy_set(
            organization=request.organization,
            on_store_failure=form.cleaned_data["on_store_failure"],
            actor=request.user,
        )
        label = StoreFailure(form.cleaned_data["on_store_failure"]).label.lower()
        messages.success(request, f"When the budget store is unavailable: {label}.")
    else:
        messages.error(request, "Choose what happens when the budget store is unavailable.")
    return redirect("budgets:alert-settings")
