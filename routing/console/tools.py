"""Console pages for the dry run and deployment health."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from console.access import HtmxHttpRequest, is_manager, manager_required, organization_required, render_page
from console.forms import form_error_apply
from console.keycache import KeyContext, key_context_load
from console.models import ApiKey
from evals.facade import deployment_marks
from providers.selectors import deployments_filter
from providers.snapshot import catalog_build
from routing import services
from routing.console.common import head_context, live_state
from routing.console.forms import BreakerForm, DryRunForm, HealthFilterForm
from routing.engine.explain import explain
from routing.engine.snapshot import policy_compile, routing_build
from routing.models import DeploymentPolicy, DeploymentProbe
from routing.selectors import (
    deployment_policy_for,
    deployment_recent_stats,
    deployments_visible,
    policy_head,
)


def _default_key(request: HtmxHttpRequest) -> KeyContext:
    return KeyContext(
        key_id=0,
        name="dry run",
        prefix="",
        organization_id=request.organization.id,
        team_id=None,
        user_id=None,
        allowed_models=frozenset(),
        expires_at=None,
        revoked=False,
        data_classification="internal",
        app_name="",
        tags=(),
    )


@organization_required
@require_http_methods(["GET", "POST"])
def dry_run(request: HtmxHttpRequest) -> HttpResponse:
    org = request.organization
    keys = list(ApiKey.objects.filter(organization=org, revoked_at__isnull=True).values_list("id", "name")[:200])
    form = DryRunForm(request.POST or None, keys=keys)
    result = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        key = _default_key(request)
        if data["key"]:
            found = (
                ApiKey.objects.filter(organization=org, pk=data["key"]).values_list("secret_hash", flat=True).first()
            )
            key = (key_context_load(found) if found else None) or key
        snapshot = routing_build(catalog_build(), organization_id=org.id)
        policy = snapshot.policy(org.id)
        if data.get("version") == "head":
            head = policy_head(organization=org)
            if head is not None:
                team_ids = dict(org.teams.values_list("name", "id"))
                policy = policy_compile(
                    organization_id=org.id,
                    version=head.number,
                    document=head.document,
                    catalog=snapshot.catalog,
                    breakers=snapshot.breakers,
                    team_ids=team_ids,
                )
        headers = {
            name: value
            for name, value in (
                ("x-data-classification", data["classification"].strip().lower()),
                ("x-gatehouse-tags", data["tags"]),
                ("x-gatehouse-workflow", data["workflow"]),
            )
            if value
        }
        result = explain(policy=policy, key=key, body=data["request"], headers=headers, state=live_state(request))
    context = {**head_context(request), "form": form, "result": result}
    return render_page(request, "routing/dry_run.html", "result", context)


def _can_edit(request: HtmxHttpRequest, deployment) -> bool:
    if not is_manager(request):
        return False
    owner = deployment.provider.organization_id
    return (request.user.is_staff or request.user.is_superuser) if owner is None else owner == request.organization.id


HEALTH_PER_PAGE = 25


@organization_required
def health(request: HtmxHttpRequest) -> HttpResponse:
    """Live health, filtered (text, provider, state) and one page at a time."""
    visible = deployments_visible(organization=request.organization).filter(is_active=True)
    providers = sorted({name for name in visible.values_list("provider__name", flat=True)})
    filters = HealthFilterForm(request.GET, providers=providers)
    values = filters.cleaned_data if filters.is_valid() else {}
    chosen = deployments_filter(visible, search=values.get("search", "").strip(), provider=values.get("provider", ""))
    deployments = sorted(chosen.select_related("model", "provider"), key=lambda d: (d.model.name, d.name))
    state_backend = live_state(request)
    now = state_backend.now()
    wanted_state = values.get("state", "")
    if wanted_state:  # the state is live, not in the database: read it for the filtered set
        live_all = state_backend.inspect([d.id for d in deployments])
        deployments = [d for d in deployments if live_all[d.id].status(now) == wanted_state]
    page = Paginator(deployments, HEALTH_PER_PAGE).get_page(request.GET.get("page"))
    shown = list(page.object_list)
    ids = [d.id for d in shown]
    live = state_backend.inspect(ids)
    recent = deployment_recent_stats(deployment_ids=ids)
    breakers = {p.deployment_id: p for p in DeploymentPolicy.objects.filter(deployment_id__in=ids)}
    probes = {p.deployment_id: p for p in DeploymentProbe.objects.filter(deployment_id__in=ids)}
    marks = deployment_marks(organization_id=request.organization.id)
    rows = []
    for deployment in shown:
        health = live[deployment.id]
        rows.append(
            {
                "deployment": deployment,
                "state": health,
                "status": health.status(now),
                "ejected_for": max(0.0, health.open_until - now),
                "recent": recent.get(deployment.id),
                "breaker": breakers.get(deployment.id) or DeploymentPolicy(deployment=deployment),
                "can_edit": _can_edit(request, deployment),
                "probe": probes.get(deployment.id),
                "marks": marks.get(deployment.name, ()),
            }
        )
    context = {
        **head_context(request),
        "rows": rows,
        "backend": state_backend.name,
        "filters": filters,
        "page": page,
        "filtered": any(values.values()),
    }
    return render_page(request, "routing/health.html", "table", context)


@manager_required
@require_http_methods(["GET", "POST"])
def breaker_edit(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    deployment = get_object_or_404(deployments_visible(organization=request.organization), pk=pk)
    if not _can_edit(request, deployment):
        raise PermissionDenied("Shared deployments are managed by a Gatehouse superuser.")
    current = deployment_policy_for(deployment=deployment)
    form = BreakerForm(
        initial={
            "failure_threshold": current.failure_threshold,
            "failure_window": current.failure_window,
            "cooldown": current.cooldown,
        }
    )
    if request.method == "POST":
        form = BreakerForm(request.POST)
        if form.is_valid():
            try:
                services.deployment_policy_set(deployment=deployment, actor=request.user, **form.cleaned_data)
            except ValidationError as exc:
                form_error_apply(form, exc)
            else:
                messages.success(request, f"Ejection settings of {deployment.name} saved.")
                return redirect("routing:health")
    return render(
        request, "routing/breaker_form.html", {**head_context(request), "form": form, "deployment": deployment}
    )
