"""Budgets, their periods, rate limits, alerts and where alerts go.

Owners and admins write; finance reads. Amounts are decimal strings in USD.
"""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from budgets import services
from budgets.models import (
    AlertSettings,
    Budget,
    BudgetAlert,
    DeliveryStatus,
    LimitScope,
    Period,
    RateLimit,
    Scope,
    units_to_usd,
)
from budgets.selectors import alerts_active, budget_list, budget_periods, budget_statuses
from console.api.base import ScopedViewSet
from console.api.permissions import MANAGERS, SPEND_READERS
from gatehouse.money import money_plain
from gatehouse.money_api import MoneyField

AMOUNT = {"max_digits": 20, "decimal_places": 10}


# Budgets and rate limits both have a `scope` with different choices, and the two delivery
# statuses share one choice set: as schema enums their generated names would collide, so the
# choices are documented in the description instead.
@extend_schema_field(
    {"type": "string", "pattern": f"^({'|'.join(Scope.values)})$", "description": "One of: " + ", ".join(Scope.values)}
)
class BudgetScopeField(serializers.ChoiceField):
    def __init__(self, **kwargs) -> None:
        super().__init__(choices=Scope.choices, **kwargs)


@extend_schema_field(
    {
        "type": "string",
        "pattern": f"^({'|'.join(LimitScope.values)})$",
        "description": "One of: " + ", ".join(LimitScope.values),
    }
)
class LimitScopeField(serializers.ChoiceField):
    def __init__(self, **kwargs) -> None:
        super().__init__(choices=LimitScope.choices, **kwargs)


@extend_schema_field({"type": "string", "readOnly": True, "description": "One of: " + ", ".join(DeliveryStatus.values)})
class DeliveryField(serializers.CharField):
    pass


class BudgetPeriodOutput(serializers.Serializer):
    period_start = serializers.DateTimeField()
    period_end = serializers.DateTimeField(allow_null=True, help_text="When it resets; null for lifetime budgets.")
    limit = MoneyField(**AMOUNT)
    spent = MoneyField(**AMOUNT)
    held = MoneyField(**AMOUNT, help_text="Reserved by requests in flight.")
    remaining = MoneyField(**AMOUNT)


class BudgetOutput(serializers.ModelSerializer):
    scope = BudgetScopeField(read_only=True)
    current = serializers.SerializerMethodField()

    class Meta:
        model = Budget
        fields = [
            "id",
            "name",
            "scope",
            "scope_id",
            "amount",
            "period",
            "hard",
            "thresholds",
            "created_at",
            "updated_at",
            "archived_at",
            "current",
        ]
        read_only_fields = fields

    @extend_schema_field(BudgetPeriodOutput)
    def get_current(self, budget: Budget) -> dict:
        status_ = self.context.get("statuses", {}).get(budget.id)
        if status_ is None:
            status_ = budget_statuses(budgets=[budget])[budget.id]
        return BudgetPeriodOutput(status_).data


class BudgetCreateInput(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    scope = BudgetScopeField()
    scope_id = serializers.IntegerField(min_value=1)
    amount = serializers.DecimalField(**AMOUNT, min_value=0)
    period = serializers.ChoiceField(choices=Period.choices, default=Period.MONTHLY)
    hard = serializers.BooleanField(default=True)
    thresholds = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=1000), required=False)


class BudgetUpdateInput(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    amount = serializers.DecimalField(**AMOUNT, min_value=0, required=False)
    period = serializers.ChoiceField(choices=Period.choices, required=False)
    hard = serializers.BooleanField(required=False)
    thresholds = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=1000), required=False)


@extend_schema(tags=["budgets"])
class BudgetViewSet(ScopedViewSet):
    """Spending limits per organization, team, user or key (owners and admins write; finance reads)."""

    queryset = Budget.objects.none()
    serializer_class = BudgetOutput
    read_roles = SPEND_READERS
    write_roles = MANAGERS

    def get_queryset(self) -> QuerySet[Budget]:
        if self.schema_only:
            return Budget.objects.none()
        return budget_list(organization_id=self.organization.id)

    def get_serializer_context(self) -> dict:
        context = super().get_serializer_context()
        context.setdefault("statuses", {})
        return context

    def _render_many(self, budgets):
        page = self.paginate_queryset(budgets)
        context = {**self.get_serializer_context(), "statuses": budget_statuses(budgets=list(page))}
        return self.get_paginated_response(BudgetOutput(page, many=True, context=context).data)

    @extend_schema(responses=BudgetOutput(many=True))
    def list(self, request):
        return self._render_many(self.get_queryset())

    @extend_schema(responses=BudgetOutput)
    def retrieve(self, request, pk=None):
        return self.render(BudgetOutput, self.get_object())

    @extend_schema(request=BudgetCreateInput, responses={201: BudgetOutput})
    def create(self, request):
        data = self.validated(BudgetCreateInput)
        budget = services.budget_create(organization=self.organization, actor=request.user, **data)
        return self.render(BudgetOutput, budget, status_code=status.HTTP_201_CREATED)

    @extend_schema(request=BudgetUpdateInput, responses=BudgetOutput)
    def partial_update(self, request, pk=None):
        budget = self.get_object()
        services.budget_update(budget=budget, actor=request.user, **self.validated(BudgetUpdateInput, partial=True))
        return self.render(BudgetOutput, self.get_object())

    @extend_schema(responses={204: None}, summary="Archive a budget (its history stays readable)")
    def destroy(self, request, pk=None):
        services.budget_archive(budget=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        responses=BudgetPeriodOutput(many=True),
        summary="The budget's periods, newest first",
        operation_id="budgets_periods",
    )
    @action(detail=True, methods=["get"], pagination_class=None)
    def periods(self, request, pk=None):
        rows = budget_periods(budget=self.get_object())
        return Response(BudgetPeriodOutput(rows, many=True).data)


class RateLimitOutput(serializers.ModelSerializer):
    scope = LimitScopeField(read_only=True)

    class Meta:
        model = RateLimit
        fields = ["id", "name", "scope", "scope_id", "rpm", "tpm", "created_at", "updated_at"]
        read_only_fields = fields


class RateLimitInput(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    scope = LimitScopeField()
    scope_id = serializers.IntegerField(min_value=1)
    rpm = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None)
    tpm = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None)


@extend_schema(tags=["budgets"])
class RateLimitViewSet(ScopedViewSet):
    """Requests and tokens per minute per key, user, team, the organization or one of its deployments.

    Posting a limit for a target that has one replaces it.
    """

    queryset = RateLimit.objects.none()
    serializer_class = RateLimitOutput
    read_roles = SPEND_READERS
    write_roles = MANAGERS

    def get_queryset(self) -> QuerySet[RateLimit]:
        if self.schema_only:
            return RateLimit.objects.none()
        return RateLimit.objects.filter(organization=self.organization).order_by("scope", "scope_id", "id")

    @extend_schema(responses=RateLimitOutput(many=True))
    def list(self, request):
        return self.render_list(RateLimitOutput, self.get_queryset())

    @extend_schema(responses=RateLimitOutput)
    def retrieve(self, request, pk=None):
        return self.render(RateLimitOutput, self.get_object())

    @extend_schema(request=RateLimitInput, responses={201: RateLimitOutput})
    def create(self, request):
        data = self.validated(RateLimitInput)
        existing = RateLimit.objects.filter(scope=data["scope"], scope_id=data["scope_id"]).first()
        if existing is not None and existing.organization_id != self.organization.id:
            raise serializers.ValidationError({"scope_id": "This target is not in your organization."})
        limit = services.rate_limit_set(organization=self.organization, actor=request.user, **data)
        return self.render(RateLimitOutput, limit, status_code=status.HTTP_201_CREATED)

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None):
        services.rate_limit_delete(limit=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class BudgetAlertOutput(serializers.ModelSerializer):
    budget_name = serializers.CharField(source="budget.name")
    webhook_status = DeliveryField(read_only=True)
    email_status = DeliveryField(read_only=True)
    spent = serializers.SerializerMethodField()
    limit = serializers.SerializerMethodField()

    class Meta:
        model = BudgetAlert
        fields = [
            "id",
            "budget",
            "budget_name",
            "threshold",
            "spent",
            "limit",
            "period_start",
            "period_end",
            "created_at",
            "webhook_status",
            "email_status",
            "attempts",
            "delivered_at",
            "dismissed_at",
        ]
        read_only_fields = fields

    def get_spent(self, alert: BudgetAlert) -> str:
        return money_plain(units_to_usd(alert.spent_units))

    def get_limit(self, alert: BudgetAlert) -> str:
        return money_plain(units_to_usd(alert.limit_units))


@extend_schema(tags=["budgets"])
class BudgetAlertViewSet(ScopedViewSet):
    """Thresholds crossed, newest first; `active` lists what the console banner shows."""

    queryset = BudgetAlert.objects.none()
    serializer_class = BudgetAlertOutput
    read_roles = SPEND_READERS
    write_roles = SPEND_READERS

    def get_queryset(self) -> QuerySet[BudgetAlert]:
        if self.schema_only:
            return BudgetAlert.objects.none()
        return BudgetAlert.objects.filter(organization_id=self.organization.id).select_related("budget")

    @extend_schema(responses=BudgetAlertOutput(many=True))
    def list(self, request):
        return self.render_list(BudgetAlertOutput, self.get_queryset())

    @extend_schema(responses=BudgetAlertOutput(many=True), operation_id="budget_alerts_active")
    @action(detail=False, methods=["get"], pagination_class=None)
    def active(self, request):
        return Response(BudgetAlertOutput(alerts_active(organization_id=self.organization.id), many=True).data)

    @extend_schema(request=None, responses=BudgetAlertOutput, operation_id="budget_alerts_dismiss")
    @action(detail=True, methods=["post"])
    def dismiss(self, request, pk=None):
        alert = services.alert_dismiss(alert=self.get_object(), actor=request.user)
        return self.render(BudgetAlertOutput, alert)


class AlertSettingsOutput(serializers.Serializer):
    webhook_url = serializers.CharField()
    has_webhook_secret = serializers.BooleanField()
    emails = serializers.ListField(child=serializers.EmailField())


class AlertSettingsIssued(AlertSettingsOutput):
    webhook_secret = serializers.CharField(
        required=False, help_text="Generated for you when you set a URL without one; shown once (absent otherwise)."
    )


class AlertSettingsInput(serializers.Serializer):
    webhook_url = serializers.URLField(required=False, allow_blank=True, default="")
    webhook_secret = serializers.CharField(
        required=False,
        allow_blank=True,
        write_only=True,
        default="",
        min_length=16,
        help_text="HMAC-SHA256 key for the signature header.",
    )
    emails = serializers.ListField(child=serializers.EmailField(), required=False, default=list)


def _settings_body(settings_: AlertSettings | None, secret: str = "") -> dict:
    body = {
        "webhook_url": settings_.webhook_url if settings_ else "",
        "has_webhook_secret": bool(settings_ and settings_.webhook_secret_encrypted),
        "emails": list(settings_.emails) if settings_ else [],
    }
    if secret:
        body["webhook_secret"] = secret
    return body


@extend_schema(tags=["budgets"])
class AlertSettingsViewSet(ScopedViewSet):
    """Where budget alerts go: a signed webhook and e-mail addresses (empty: owners, admins, finance)."""

    queryset = AlertSettings.objects.none()
    serializer_class = AlertSettingsOutput
    read_roles = SPEND_READERS
    write_roles = MANAGERS
    pagination_class = None  # one settings object, not a list

    @extend_schema(responses=AlertSettingsOutput, operation_id="budget_alert_settings_get")
    def list(self, request):
        current = AlertSettings.objects.filter(organization=self.organization).first()
        return Response(AlertSettingsOutput(_settings_body(current)).data)

    @extend_schema(
        request=AlertSettingsInput, responses={200: AlertSettingsIssued}, operation_id="budget_alert_settings_set"
    )
    def create(self, request):
        data = self.validated(AlertSettingsInput)
        current, generated = services.alert_settings_set(
            organization=self.organization,
            actor=request.user,
            webhook_url=data["webhook_url"],
            webhook_secret=data["webhook_secret"] or None,
            emails=data["emails"],
        )
        return Response(_settings_body(current, generated))
