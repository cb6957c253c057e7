"""Usage records and spend summaries (owners, admins and finance).

The list is cursor-paginated in a fixed order (newest first, then id) so pages
stay stable while the gateway keeps writing records.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from budgets.filters import UsageApiFilterForm, UsageApiFilterSet
from budgets.models import MONEY, UsageRecord
from budgets.selectors import GROUP_BY_CHOICES, ORDERING, usage_get, usage_list, usage_summary, usage_totals
from console.api.base import ScopedViewSet, form_parameters, int_parameter, strict_int
from console.api.permissions import SPEND_READERS
from gatehouse.money_api import MoneyField

COST = {"max_digits": 30, "decimal_places": MONEY["decimal_places"]}


class UsagePagination(CursorPagination):
    ordering = ORDERING
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_size(self, request) -> int:
        size = strict_int(request, self.page_size_query_param, minimum=1, maximum=self.max_page_size)
        return self.page_size if size is None else size

    def get_schema_operation_parameters(self, view) -> list[dict]:
        cursor, _size = super().get_schema_operation_parameters(view)
        size = int_parameter(
            self.page_size_query_param,
            f"Records per page (default {self.page_size}).",
            minimum=1,
            maximum=self.max_page_size,
        )
        return [cursor, size]


class UsageOutput(serializers.ModelSerializer):
    ok = serializers.BooleanField(read_only=True)

    class Meta:
        model = UsageRecord
        fields = [
            "request_id",
            "created_at",
            "ok",
            "status_code",
            "endpoint",
            "stream",
            "model_requested",
            "model_used",
            "deployment_id",
            "deployment_name",
            "provider_name",
            "attempts",
            "key_id",
            "team_id",
            "user_id",
            "input_tokens",
            "output_tokens",
            "cached_tokens",
            "cache_write_5m_tokens",
            "cache_write_1h_tokens",
            "tokens_estimated",
            "input_price",
            "output_price",
            "cached_input_price",
            "input_cost",
            "output_cost",
            "cost",
            "ttft_ms",
            "latency_ms",
            "tokens_per_second",
            "error_type",
            "error_code",
            "error_message",
            "tags",
            "workflow",
            "end_user",
            "metadata",
            "sanitized",
            "deployment_facts",
        ]
        read_only_fields = fields


class UsageSums(serializers.Serializer):
    requests = serializers.IntegerField()
    errors = serializers.IntegerField()
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cached_tokens = serializers.IntegerField()
    cost = MoneyField(**COST, help_text="USD, a decimal string in normal notation.")


class UsageSummaryRow(UsageSums):
    group = serializers.CharField(
        allow_null=True, help_text="The day (YYYY-MM-DD, organization time zone), model name, key id or team id."
    )
    label = serializers.CharField()


class UsageSummaryOutput(serializers.Serializer):
    group_by = serializers.ChoiceField(choices=GROUP_BY_CHOICES)
    results = UsageSummaryRow(many=True)
    totals = UsageSums()


class UsageSummaryInput(serializers.Serializer):
    group_by = serializers.ChoiceField(choices=GROUP_BY_CHOICES, default="day")


@extend_schema(tags=["usage"])
class UsageViewSet(ScopedViewSet):
    """Usage records (one per authenticated request) and spend summaries; owners, admins and finance."""

    queryset = UsageRecord.objects.none()
    serializer_class = UsageOutput  # the representation (browsable API, OPTIONS)
    read_roles = SPEND_READERS
    write_roles = frozenset()
    pagination_class = UsagePagination
    lookup_field = "request_id"
    lookup_value_regex = r"[^/]+"

    def filters(self):
        filterset = UsageApiFilterSet(self.request.query_params)
        if not filterset.is_valid():
            raise serializers.ValidationError(filterset.errors)
        return filterset.filters

    def get_queryset(self) -> QuerySet[UsageRecord]:
        if self.schema_only:
            return UsageRecord.objects.none()
        return usage_list(organization_id=self.organization.id)

    @extend_schema(parameters=form_parameters(UsageApiFilterForm), responses=UsageOutput(many=True))
    def list(self, request):
        queryset = usage_list(organization_id=self.organization.id, filters=self.filters())
        return self.render_list(UsageOutput, queryset)

    @extend_schema(responses=UsageOutput)
    def retrieve(self, request, request_id=None):
        record = usage_get(organization_id=self.organization.id, request_id=request_id)
        if record is None:
            raise Http404
        return self.render(UsageOutput, record)

    @extend_schema(
        parameters=[
            *form_parameters(UsageApiFilterForm),
            OpenApiParameter("group_by", str, enum=[*GROUP_BY_CHOICES], description="Default: day."),
        ],
        responses=UsageSummaryOutput,
        summary="Sums of requests, errors, tokens and cost per day, model, key or team",
        operation_id="usage_summary",
    )
    @action(detail=False, methods=["get"], pagination_class=None)
    def summary(self, request):
        filters = self.filters()
        options = UsageSummaryInput(data=request.query_params)
        options.is_valid(raise_exception=True)
        group_by = options.validated_data["group_by"]
        rows = usage_summary(organization_id=self.organization.id, group_by=group_by, filters=filters)
        body = {"group_by": group_by, "results": rows, "totals": usage_totals(rows)}
        return Response(UsageSummaryOutput(body).data)
