"""The compare view: one prompt, two or three models side by side, with cost and latency."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render

from console.access import HtmxHttpRequest, is_manager, organization_required
from console.models import DataClass
from workspace.compare import MAX_MODELS, compare
from workspace.conf import workspace_conf
from workspace.services import workspace_key_ensure
from workspace.turns import with_gateway
from workspace.views.common import chat_models, require_enabled, serving_gateway


@organization_required
def compare_page(request: HtmxHttpRequest) -> HttpResponse:
    require_enabled(request)
    offered = chat_models(request)
    chosen = [m for m in request.POST.getlist("models") if m] if request.method == "POST" else offered[:2]
    prompt = request.POST.get("prompt", "").strip() if request.method == "POST" else ""
    data_class = request.POST.get("data_class") or DataClass.INTERNAL
    errors: list[str] = []
    sides = []
    if request.method == "POST":
        chosen = list(dict.fromkeys(chosen))
        if not 2 <= len(chosen) <= MAX_MODELS:
            errors.append(f"Choose two or three different models (you chose {len(chosen)}).")
        if offered and any(m not in offered for m in chosen):
            errors.append("One of the models is not offered in your workspace.")
        if not prompt:
            errors.append("Write a prompt first.")
        elif len(prompt) > workspace_conf().max_message_chars:
            errors.append(f"A prompt holds at most {workspace_conf().max_message_chars} characters.")
        if data_class not in DataClass.values:
            errors.append("Choose a known data class.")
        if not errors:
            key = workspace_key_ensure(organization=request.organization, user=request.user)
            sides = with_gateway(
                serving_gateway(request),
                lambda gateway: compare(
                    gateway,
                    key_id=key.api_key_id,
                    models=chosen,
                    prompt=prompt,
                    data_class=data_class,
                    username=request.user.get_username(),
                ),
            )
    slots = (chosen + [""] * MAX_MODELS)[:MAX_MODELS]
    context = {
        "offered": offered,
        "slots": slots,
        "prompt": prompt,
        "data_class": data_class,
        "data_classes": DataClass.choices,
        "errors": errors,
        "sides": sides,
        "can_manage": is_manager(request),
    }
    status = 400 if errors else 200
    return render(request, "workspace/compare.html", context, status=status)
