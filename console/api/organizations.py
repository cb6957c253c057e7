"""Organizations: the caller's own, and the current one's settings."""

from __future__ import annotations

from zoneinfo import available_timezones

from django.db.models import F, QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers

from console import services
from console.api.base import ScopedViewSet
from console.models import Organization


class OrganizationOutput(serializers.ModelSerializer):
    role = serializers.CharField(read_only=True, help_text="The caller's role in this organization.")
    is_current = serializers.SerializerMethodField(help_text="Whether requests act in this organization.")

    class Meta:
        model = Organization
        fields = ["id", "name", "slug", "time_zone", "role", "is_current", "created_at"]
        read_only_fields = fields

    def get_is_current(self, organization: Organization) -> bool:
        current = self.context.get("organization")
        return current is not None and current.id == organization.id


class OrganizationUpdateInput(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    time_zone = serializers.ChoiceField(
        choices=sorted(available_timezones()), required=False, help_text="An IANA zone, e.g. Europe/Berlin."
    )


@extend_schema(tags=["organizations"])
class OrganizationViewSet(ScopedViewSet):
    """The organizations you belong to; details and settings of the one requests act in."""

    queryset = Organization.objects.none()
    serializer_class = OrganizationOutput  # the representation (browsable API, OPTIONS)

    def get_queryset(self) -> QuerySet[Organization]:
        if self.schema_only:
            return Organization.objects.none()
        orgs = Organization.objects.filter(memberships__user=self.request.user).annotate(role=F("memberships__role"))
        if self.action == "list" and getattr(self.request._request, "gatehouse_token_org", None) is None:
            return orgs.order_by("name")
        # A token sees only its own organization; details are for the current one only.
        return orgs.filter(id=self.organization.id)

    @extend_schema(responses=OrganizationOutput(many=True))
    def list(self, request):
        return self.render_list(OrganizationOutput, self.get_queryset())

    @extend_schema(responses=OrganizationOutput)
    def retrieve(self, request, pk=None):
        return self.render(OrganizationOutput, self.get_object())

    @extend_schema(request=OrganizationUpdateInput, responses=OrganizationOutput)
    def partial_update(self, request, pk=None):
        organization = self.get_object()
        data = self.validated(OrganizationUpdateInput, partial=True)
        services.organization_update(organization=organization, actor=request.user, **data)
        return self.render(OrganizationOutput, self.get_object())
