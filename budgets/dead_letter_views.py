"""Console pages for usage records the database refused: list, one in full, retry, discard.

Owners and admins of the organization the record belongs to see them; a record
whose organization cannot be told is in the server log and the audit trail only.
"""

from __future__ import annotations

import orjson
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from budgets import services
from budgets.models import UsageDeadLetter
from budgets.selectors import dead_letters_list
from console.access import HtmxHttpRequest, manager_required, render_page

PAGE_SIZE = 50


def _dead_letter(request: HtmxHttpRequest, pk: int) -> UsageDeadLetter:
    return get_object_or_404(UsageDeadLetter, pk=pk, organization_id=request.organization.id)


def _page_number(request: HtmxHttpRequest) -> int:
    try:
        return max(1, int(request.GET.get("page", 1)))
    except (TypeError, ValueError):
        return 1


@manager_required
def dead_letter_list(request: HtmxHttpRequest) -> HttpResponse:
    number = _page_number(request)
    start = (number - 1) * PAGE_SIZE
    rows = list(
        dead_letters_list(organization_id=request.organization.id).defer("record")[start : start + PAGE_SIZE + 1]
    )
    context = {
        "rows": rows[:PAGE_SIZE],
        "page_number": number,
        "has_next": len(rows) > PAGE_SIZE,
        "has_previous": number > 1,
    }
    return render_page(request, "budgets/dead_letter_list.html", "dead-letter-results", context)


def _pretty(record: str) -> str:
    try:
        return orjson.dumps(orjson.loads(record), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()
    except orjson.JSONDecodeError:
        return record


@manager_required
def dead_letter_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    letter = _dead_letter(request, pk)
    return render(request, "budgets/dead_letter_detail.html", {"letter": letter, "record": _pretty(letter.record)})


@manager_required
@require_POST
def dead_letter_retry(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    letter = _dead_letter(request, pk)
    try:
        record = services.dead_letter_retry(dead_letter=letter, actor=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("budgets:dead-letter-detail", pk=letter.pk)
    messages.success(request, f"Usage record {record.request_id} stored.")
    return redirect("budgets:dead-letter-list")


@manager_required
@require_http_methods(["GET", "POST"])
def dead_letter_discard(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    letter = _dead_letter(request, pk)
    if request.method == "POST":
        services.dead_letter_discard(dead_letter=letter, actor=request.user)
        messages.success(request, f"Usage record {letter.request_id} discarded.")
        return redirect("budgets:dead-letter-list")
    return render(
        request,
        "console/confirm.html",
        {
            "title": f"Discard usage record {letter.request_id}?",
            "message": "The request will have no usage record: its cost is missing from usage, rollups and "
            "exports for good. The audit trail keeps the record's JSON.",
            "action": reverse("budgets:dead-letter-discard", args=[letter.pk]),
            "confirm_label": "Discard record",
            "cancel_url": reverse("budgets:dead-letter-detail", args=[letter.pk]),
        },
    )
