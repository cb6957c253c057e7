"""What the workspace remembers for a member: seen, added, edited and deleted by them."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from console.access import HtmxHttpRequest, organization_required
from console.forms import form_error_apply
from workspace import selectors, services
from workspace.forms import MemoryForm
from workspace.models import MemoryFact


def _fact(request: HtmxHttpRequest, pk: int) -> MemoryFact:
    return get_object_or_404(MemoryFact, pk=pk, organization=request.organization, user=request.user)


@organization_required
def memory_list(request: HtmxHttpRequest) -> HttpResponse:
    form = MemoryForm()
    if request.method == "POST":
        form = MemoryForm(request.POST)
        if form.is_valid():
            try:
                services.memory_add(
                    organization=request.organization, user=request.user, text=form.cleaned_data["text"]
                )
            except ValidationError as exc:
                form_error_apply(form, exc)
            else:
                messages.success(request, "Saved to your memory.")
                back = request.POST.get("next", "")
                if back and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
                    return redirect(back)
                return redirect("workspace:memory")
    facts = selectors.memory_of(organization=request.organization, user=request.user)
    page = Paginator(facts, 50).get_page(request.GET.get("page"))
    return render(request, "workspace/memory.html", {"form": form, "page": page})


@organization_required
@require_POST
def memory_edit(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    fact = _fact(request, pk)
    try:
        services.memory_update(fact=fact, text=request.POST.get("text", ""))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "Memory updated.")
    return redirect("workspace:memory")


@organization_required
def memory_delete(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    fact = _fact(request, pk)
    if request.method == "POST":
        services.memory_delete(fact=fact)
        messages.success(request, "Forgotten.")
        return redirect("workspace:memory")
    return render(
        request,
        "console/confirm.html",
        {
            "title": "Forget this?",
            "message": fact.text,
            "action": reverse("workspace:memory-delete", args=[pk]),
            "confirm_label": "Forget",
            "cancel_url": reverse("workspace:memory"),
        },
    )
