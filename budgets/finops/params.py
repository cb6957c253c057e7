"""The query parameters every FinOps page reads: period, grouping, sort and dimension filters.

They live in the URL (bookmarkable, shareable, kept by htmx's push-url); bad values
give a clear message and the defaults, never a 500.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django import forms
from django.utils import timezone

from budgets.finops.queries import DIMENSIONS, INTEGER_DIMENSIONS, Filters, Scope, Window, day_start, month_window
from budgets.selectors import organization_zone
from console.models import ApiKey, Role

PERIODS = [
    ("month", "This month"),
    ("last_month", "Last month"),
    ("7d", "Last 7 days"),
    ("30d", "Last 30 days"),
    ("90d", "Last 90 days"),
    ("365d", "Last 365 days"),
    ("custom", "Custom range"),
]
SPEND_READERS = {Role.OWNER, Role.ADMIN, Role.FINANCE}
MAX_DAYS = 400


class FinOpsForm(forms.Form):
    period = forms.ChoiceField(choices=PERIODS, required=False)
    start = forms.DateField(required=False, help_text="First day (inclusive), YYYY-MM-DD.")
    end = forms.DateField(required=False, help_text="Last day (inclusive), YYYY-MM-DD.")
    group = forms.ChoiceField(choices=[(d.name, d.label) for d in DIMENSIONS.values()], required=False)
    sort = forms.CharField(required=False, max_length=40)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for dimension in DIMENSIONS.values():
            if dimension.name in INTEGER_DIMENSIONS:
                self.fields[f"f_{dimension.name}"] = forms.IntegerField(required=False, min_value=0)
            else:
                self.fields[f"f_{dimension.name}"] = forms.CharField(required=False, max_length=200)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("period") == "custom":
            start, end = cleaned.get("start"), cleaned.get("end")
            if not start or not end:
                self.add_error("start", "A custom range needs a start and an end day.")
            elif end < start:
                self.add_error("end", "The end day must not lie before the start day.")
            elif (end - start).days > MAX_DAYS:
                self.add_error("end", f"A range covers at most {MAX_DAYS} days.")
        return cleaned


@dataclass(frozen=True)
class PageInput:
    scope: Scope
    window: Window
    filters: Filters
    group: str
    sort: str
    today: date
    now: datetime
    form: FinOpsForm
    errors: dict[str, list[str]]
    own_only: bool

    @property
    def zone(self):
        return self.window.zone


def reader_scope(request: Any) -> tuple[Scope, bool]:
    """Finance, admins and owners see the whole organization; members their own keys."""
    org = request.organization
    if request.membership.role in SPEND_READERS:
        return Scope(organization_id=org.id), False
    keys = tuple(ApiKey.objects.filter(organization=org, user=request.user).values_list("id", flat=True))
    return Scope(organization_id=org.id, key_ids=keys), True


def window_of(period: str, today: date, zone: Any, start: date | None = None, end: date | None = None) -> Window:
    if period == "last_month":
        return month_window(today, zone, offset=-1)
    if period in ("7d", "30d", "90d", "365d"):
        days = int(period[:-1])
        first = today - timedelta(days=days - 1)
        return Window(day_start(first, zone), day_start(today + timedelta(days=1), zone), zone, dict(PERIODS)[period])
    if period == "custom" and start and end:
        return Window(day_start(start, zone), day_start(end + timedelta(days=1), zone), zone, f"{start} – {end}")
    return month_window(today, zone)


def page_input(request: Any, *, default_period: str = "month", default_group: str = "model") -> PageInput:
    scope, own_only = reader_scope(request)
    zone = organization_zone(request.organization.id)
    now = timezone.now()
    today = now.astimezone(zone).date()
    form = FinOpsForm(data={k: v for k, v in request.GET.items() if v != ""})
    valid = form.is_valid()
    cleaned = form.cleaned_data if valid else {}
    period = cleaned.get("period") or default_period
    window = window_of(period, today, zone, cleaned.get("start"), cleaned.get("end"))
    values = {}
    for name in DIMENSIONS:
        value = cleaned.get(f"f_{name}")
        if value not in (None, ""):
            values[name] = str(value)
    return PageInput(
        scope=scope,
        window=window,
        filters=Filters(values),
        group=cleaned.get("group") or default_group,
        sort=cleaned.get("sort") or "",
        today=today,
        now=now,
        form=form,
        errors={name: list(errors) for name, errors in form.errors.items()} if not valid else {},
        own_only=own_only,
    )
