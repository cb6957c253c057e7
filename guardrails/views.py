"""Console pages: policies, recognizers, the review queue, and "test a prompt"."""

from __future__ import annotations

import yaml
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from console.access import HtmxHttpRequest, is_manager, manager_required, organization_required, render_page
from console.forms import form_error_apply
from console.models import ApiKey, Team
from guardrails import selectors, services
from guardrails.detectors import BUILTIN_ENTITIES
from guardrails.engine import scan_text
from guardrails.facade import Guard
from guardrails.forms import PolicyForm, RecognizerForm, ReviewForm, TestPromptForm, scope_choices
from guardrails.models import GuardPolicy, GuardRecognizer, GuardReview, ReviewStatus
from guardrails.policy import policy_merge
from guardrails.snapshot import GuardSnapshot

PAGE_SIZE = 25


def _scopes(request: HtmxHttpRequest) -> list[tuple[str, str]]:
    org = request.organization
    teams = list(Team.objects.filter(organization=org).order_by("name").values_list("id", "name")[:500])
    keys = list(
        ApiKey.objects.filter(organization=org, revoked_at__isnull=True)
        .order_by("name")
        .values_list("id", "name")[:500]
    )
    return scope_choices(teams, keys)


def _scope_objects(request: HtmxHttpRequest, scope: str) -> tuple[Team | None, ApiKey | None]:
    """The team or key a scope value names, inside the current organization only."""
    org = request.organization
    kind, _, ident = scope.partition(":")
    if kind == "team" and ident.isdigit():
        return get_object_or_404(Team, organization=org, pk=int(ident)), None
    if kind == "key" and ident.isdigit():
        return None, get_object_or_404(ApiKey, organization=org, pk=int(ident))
    return None, None


def _scope_value(policy: GuardPolicy) -> str:
    if policy.key_id:
        return f"key:{policy.key_id}"
    if policy.team_id:
        return f"team:{policy.team_id}"
    return "organization"


def _yaml(document: dict) -> str:
    return yaml.safe_dump(document, sort_keys=False, default_flow_style=False, allow_unicode=True) if document else ""


@organization_required
@require_http_methods(["GET", "POST"])
def policy_edit(request: HtmxHttpRequest) -> HttpResponse:
    org = request.organization
    scopes = _scopes(request)
    scope = request.POST.get("scope") or request.GET.get("scope") or "organization"
    if scope not in {value for value, _ in scopes}:
        scope = "organization"
    team, key = _scope_objects(request, scope)
    current = selectors.policy_for(organization=org, team=team, key=key)
    if request.method == "POST":
        if not is_manager(request):
            return HttpResponse("Only owners and admins may change guard policies.", status=403)
        form = PolicyForm(request.POST, scopes=scopes)
        if form.is_valid():
            try:
                services.policy_set(
                    organization=org, team=team, key=key, document=form.cleaned_data["document"], actor=request.user
                )
            except ValidationError as exc:
                form_error_apply(form, exc)
            else:
                messages.success(request, "Guard policy saved.")
                return redirect(f"{request.path}?scope={scope}")
    else:
        form = PolicyForm(
            initial={"scope": scope, "document": _yaml(current.document if current else {})}, scopes=scopes
        )
    layers = selectors.policies_for(organization=org)
    merged = policy_merge(*(layer.document for layer in layers if layer.scope == "organization"))
    context = {
        "form": form,
        "scope": scope,
        "current": current,
        "layers": [(layer, _scope_value(layer)) for layer in layers],
        "effective": _yaml(merged),
        "entities": BUILTIN_ENTITIES,
        "can_manage": is_manager(request),
    }
    return render_page(request, "guardrails/policy.html", "editor", context)


@manager_required
@require_http_methods(["GET", "POST"])
def policy_delete(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    policy = get_object_or_404(GuardPolicy, organization=request.organization, pk=pk)
    if request.method == "POST":
        services.policy_delete(policy=policy, actor=request.user)
        messages.success(request, f"The {policy.scope_label} policy layer was removed.")
        return redirect("guardrails:policy")
    return render(
        request,
        "console/confirm.html",
        {
            "title": f"Remove the {policy.scope_label} policy layer?",
            "message": "Requests in this scope fall back to the layers above it.",
            "action": request.path,
            "confirm_label": "Remove layer",
            "cancel_url": reverse("guardrails:policy"),
        },
    )


@organization_required
@require_http_methods(["GET", "POST"])
def recognizer_list(request: HtmxHttpRequest) -> HttpResponse:
    org = request.organization
    form = RecognizerForm(request.POST or None)
    if request.method == "POST":
        if not is_manager(request):
            return HttpResponse("Only owners and admins may add recognizers.", status=403)
        if form.is_valid():
            data = form.cleaned_data
            try:
                services.recognizer_create(
                    organization=org,
                    entity=data["entity"],
                    pattern=data["pattern"],
                    checksum=data["checksum"] or "",
                    context=data["context"],
                    score=data["score"],
                    actor=request.user,
                )
            except ValidationError as exc:
                form_error_apply(form, exc)
            else:
                messages.success(request, f"Recognizer {data['entity'].upper()} added.")
                return redirect("guardrails:recognizers")
    page = Paginator(selectors.recognizers_for(organization=org), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request, "guardrails/recognizers.html", {"form": form, "page": page, "can_manage": is_manager(request)}
    )


@manager_required
@require_http_methods(["GET", "POST"])
def recognizer_delete(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    recognizer = get_object_or_404(GuardRecognizer, organization=request.organization, pk=pk)
    if request.method == "POST":
        services.recognizer_delete(recognizer=recognizer, actor=request.user)
        messages.success(request, f"Recognizer {recognizer.entity} removed.")
        return redirect("guardrails:recognizers")
    return render(
        request,
        "console/confirm.html",
        {
            "title": f"Remove the recognizer {recognizer.entity}?",
            "message": "Requests stop being checked for this entity type.",
            "action": request.path,
            "confirm_label": "Remove recognizer",
            "cancel_url": reverse("guardrails:recognizers"),
        },
    )


@organization_required
def review_list(request: HtmxHttpRequest) -> HttpResponse:
    status = request.GET.get("status", ReviewStatus.PENDING)
    if status not in ReviewStatus.values and status != "all":
        status = ReviewStatus.PENDING
    reviews = selectors.reviews_for(organization=request.organization, status="" if status == "all" else status)
    page = Paginator(reviews, PAGE_SIZE).get_page(request.GET.get("page"))
    return render_page(
        request,
        "guardrails/review_list.html",
        "rows",
        {"page": page, "status": status, "statuses": [("all", "All"), *ReviewStatus.choices]},
    )


@organization_required
@require_http_methods(["GET", "POST"])
def review_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    review = get_object_or_404(GuardReview, organization=request.organization, pk=pk)
    form = ReviewForm(request.POST or None, initial={"note": review.note})
    if request.method == "POST":
        if not is_manager(request):
            return HttpResponse("Only owners and admins may decide reviews.", status=403)
        if form.is_valid():
            try:
                services.review_decide(
                    review=review,
                    status=form.cleaned_data["status"],
                    note=form.cleaned_data["note"],
                    reviewer=request.user,
                )
            except ValidationError as exc:
                form_error_apply(form, exc)
            else:
                messages.success(request, f"Review of {review.request_id} decided.")
                return redirect("guardrails:reviews")
    return render(
        request, "guardrails/review_detail.html", {"review": review, "form": form, "can_manage": is_manager(request)}
    )


@organization_required
@require_http_methods(["GET", "POST"])
def test_prompt(request: HtmxHttpRequest) -> HttpResponse:
    """Shows what the guard would do with a prompt; nothing is sent upstream or stored."""
    org = request.organization
    scopes = _scopes(request)
    form = TestPromptForm(request.POST or None, scopes=scopes)
    result = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        team, key = _scope_objects(request, data.get("scope") or "organization")
        if key is not None and team is None:
            team = key.team
        data_class = data["data_class"] or (key.data_classification if key else "")
        guard = Guard(GuardSnapshot.build(organization_id=org.id))
        policy = guard.policy(
            organization_id=org.id,
            team_id=team.id if team else None,
            key_id=key.id if key else None,
            data_class=data_class,
        )
        text = data["text"]
        scan = scan_text(policy, text)
        body = {"model": "test", "messages": [{"role": data["role"], "content": text}]}
        inbound = guard.inbound(
            organization_id=org.id,
            team_id=team.id if team else None,
            key_id=key.id if key else None,
            data_class=data_class,
            endpoint="chat",
            body=body,
        )
        spans = [
            {
                "entity": span.entity,
                "value": text[span.start : span.end],
                "start": span.start,
                "end": span.end,
                "score": span.score,
                "action": policy.actions.get(span.entity, "flag"),
            }
            for span in scan.spans
        ]
        result = {
            "spans": spans,
            "rules": [(rule.name, rule.action, text[start:end]) for start, end, rule in scan.rules],
            "placeholders": [(p, inbound.vault.original(p)) for p in inbound.vault.placeholders],
            "upstream": inbound.body["messages"][0]["content"] if inbound.refusal is None else None,
            "refusal": inbound.refusal,
            "verdict": inbound.verdict.as_dict(),
            "families": dict(inbound.verdict.families),
            "threshold": policy.indirect_threshold if data["role"] == "tool" else policy.threshold,
        }
    return render_page(request, "guardrails/test_prompt.html", "result", {"form": form, "result": result})
