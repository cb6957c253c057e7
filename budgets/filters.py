"""The one definition of how usage records are filtered.

The management API (`/api/v1/usage/`) and the console usage page both read query
parameters through `UsageFilterSet`: the form validates and converts them, the
frozen `UsageFilters` applies them to a queryset. A new filter is added here once.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

from django import forms
from django.db import connection
from django.db.models import BooleanField, Q, QuerySet
from django.db.models.expressions import RawSQL

from budgets.models import UsageRecord

STATUS_OK = "ok"
STATUS_ERROR = "error"
STATUS_CHOICES = [("", "Any"), (STATUS_OK, "OK"), (STATUS_ERROR, "Error")]
# Bounds every time filter is held to: a day inside Python's date range on both sides, so that
# no conversion (to UTC, to the organization's zone) can leave it.
EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, tzinfo=UTC)


def _within_time(value: datetime | None) -> datetime | None:
    """An ISO time clamped to [EARLIEST, LATEST]: year 1 at -23:00 is a valid time, not an error."""
    if value is None:
        return None
    try:
        utc = value.astimezone(UTC)
    except OverflowError:  # past either end once moved to UTC
        return EARLIEST if value.year < 5000 else LATEST
    return min(max(utc, EARLIEST), LATEST)


class UsageFilterForm(forms.Form):
    since = forms.DateTimeField(required=False, help_text="From this time on (inclusive), ISO 8601.")
    until = forms.DateTimeField(required=False, help_text="Before this time (exclusive), ISO 8601.")
    model = forms.CharField(required=False, max_length=200, help_text="Model used or requested.")
    key = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1, help_text="API key id.")
    team = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1, help_text="Team id.")
    user = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1, help_text="User id.")
    status = forms.ChoiceField(required=False, choices=STATUS_CHOICES, help_text="ok (< 400) or error (>= 400).")
    endpoint = forms.CharField(required=False, max_length=32, help_text="chat, embeddings or models.")
    workflow = forms.CharField(required=False, max_length=200)
    tag = forms.CharField(required=False, max_length=200, help_text="Records carrying this tag.")

    # The console names an empty window; the API answers it with no records (a rule across two
    # parameters cannot be published in its schema).
    empty_window_is_error = True

    def clean_since(self) -> datetime | None:
        return _within_time(self.cleaned_data.get("since"))

    def clean_until(self) -> datetime | None:
        return _within_time(self.cleaned_data.get("until"))

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if self.empty_window_is_error and since and until and since >= until:
            self.add_error("until", "`until` must lie after `since`.")
        return cleaned


class UsageApiFilterForm(UsageFilterForm):
    empty_window_is_error = False

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        for name, field in self.fields.items():
            # The API publishes these as typed values: an empty one is not a value.
            typed = isinstance(field, forms.DateTimeField | forms.IntegerField | forms.ChoiceField)
            if typed and self.data.get(name) == "":
                self.add_error(name, "Give a value or leave the parameter out.")
        return cleaned


@dataclass(frozen=True, slots=True)
class UsageFilters:
    since: datetime | None = None
    until: datetime | None = None
    model: str = ""
    key: int | None = None
    team: int | None = None
    user: int | None = None
    status: str = ""
    endpoint: str = ""
    workflow: str = ""
    tag: str = ""

    @classmethod
    def from_cleaned(cls, cleaned: dict[str, Any]) -> UsageFilters:
        values = {f.name: cleaned.get(f.name) for f in fields(cls)}
        return cls(**{name: value if value is not None else _EMPTY[name] for name, value in values.items()})

    def apply(self, queryset: QuerySet[UsageRecord]) -> QuerySet[UsageRecord]:
        if self.since is not None:
            queryset = queryset.filter(created_at__gte=self.since)
        if self.until is not None:
            queryset = queryset.filter(created_at__lt=self.until)
        if self.model:
            queryset = queryset.filter(Q(model_used=self.model) | Q(model_requested=self.model))
        if self.key is not None:
            queryset = queryset.filter(key_id=self.key)
        if self.team is not None:
            queryset = queryset.filter(team_id=self.team)
        if self.user is not None:
            queryset = queryset.filter(user_id=self.user)
        if self.status == STATUS_OK:
            queryset = queryset.filter(status_code__lt=400)
        elif self.status == STATUS_ERROR:
            queryset = queryset.filter(status_code__gte=400)
        if self.endpoint:
            queryset = queryset.filter(endpoint=self.endpoint)
        if self.workflow:
            queryset = queryset.filter(workflow=self.workflow)
        if self.tag:
            queryset = queryset.filter(_has_tag(self.tag))
        return queryset


_EMPTY = {f.name: f.default for f in fields(UsageFilters)}


def _has_tag(tag: str) -> Q | RawSQL:
    """An exact, case-sensitive match of one element of the `tags` JSON list."""
    if connection.features.supports_json_field_contains:
        return Q(tags__contains=[tag])
    # SQLite: no JSON containment lookup, and LIKE ignores case; ask json_each instead.
    column = f'"{UsageRecord._meta.db_table}"."tags"'
    # The column name is fixed and the tag is a bound parameter.
    return RawSQL(  # noqa: S611
        f"EXISTS (SELECT 1 FROM json_each({column}) WHERE json_each.value = %s)",  # noqa: S608
        [tag],
        output_field=BooleanField(),
    )


class UsageFilterSet:
    """Query parameters in, a validated `UsageFilters` (and a filtered queryset) out.

    Shaped like a django-filter FilterSet so list views read the same way:
    `UsageFilterSet(request.GET, queryset=qs)`, `.is_valid()`, `.errors`, `.qs`,
    and `.form` for rendering the filter bar.
    """

    form_class = UsageFilterForm

    def __init__(self, data: Any = None, queryset: QuerySet[UsageRecord] | None = None) -> None:
        self.form = self.form_class(data=_only_known(data, self.form_class))
        self.queryset = queryset

    def is_valid(self) -> bool:
        return self.form.is_valid()

    @property
    def errors(self) -> dict[str, list[str]]:
        return {name: list(messages) for name, messages in self.form.errors.items()}

    @property
    def filters(self) -> UsageFilters:
        """The filters; raises ValueError when the input is not valid."""
        if not self.is_valid():
            raise ValueError("The usage filters are not valid; read `.errors`.")
        return UsageFilters.from_cleaned(self.form.cleaned_data)

    @property
    def qs(self) -> QuerySet[UsageRecord]:
        if self.queryset is None:
            raise ValueError("UsageFilterSet was built without a queryset.")
        return self.filters.apply(self.queryset)


class UsageApiFilterSet(UsageFilterSet):
    form_class = UsageApiFilterForm

    def __init__(self, data: Any = None, queryset: QuerySet[UsageRecord] | None = None) -> None:
        known = {name: data.get(name) for name in self.form_class.base_fields if data and name in data}
        self.form = self.form_class(data=known)
        self.queryset = queryset


def _only_known(data: Any, form_class: type[forms.Form]) -> dict[str, Any]:
    """The form's own fields from a QueryDict or dict (a bound form even when empty)."""
    if not data:
        return {}
    return {name: data.get(name) for name in form_class.base_fields if data.get(name) not in (None, "")}
