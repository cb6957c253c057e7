"""Teams and their members."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from console import services
from console.api.base import OrganizationRelatedField, ScopedViewSet
from console.api.permissions import MANAGERS
from console.models import Organization, Team


def org_users(organization: Organization) -> QuerySet:
    return get_user_model().objects.filter(memberships__organization=organization)


class TeamOutput(serializers.ModelSerializer):
    members = serializers.SerializerMethodField(help_text="User ids.")

    class Meta:
        model = Team
        fields = ["id", "name", "description", "members", "created_at"]
        read_only_fields = fields

    def get_members(self, team: Team) -> list[int]:
        return sorted(user.id for user in team.members.all())


class TeamCreateInput(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")


class TeamUpdateInput(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True)


class TeamMemberInput(serializers.Serializer):
    user = OrganizationRelatedField(scope=org_users, model_name="user", help_text="A member of the organization.")


@extend_schema(tags=["teams"])
class TeamViewSet(ScopedViewSet):
    """Teams of the organization and their members (owners and admins)."""

    queryset = Team.objects.none()
    serializer_class = TeamOutput  # the representation (browsable API, OPTIONS)
    read_roles = MANAGERS
    write_roles = MANAGERS

    def get_queryset(self) -> QuerySet[Team]:
        if self.schema_only:
            return Team.objects.none()
        return Team.objects.filter(organization=self.organization).prefetch_related("members").order_by("name", "id")

    @extend_schema(responses=TeamOutput(many=True))
    def list(self, request):
        return self.render_list(TeamOutput, self.get_queryset())

    @extend_schema(responses=TeamOutput)
    def retrieve(self, request, pk=None):
        return self.render(TeamOutput, self.get_object())

    @extend_schema(request=TeamCreateInput, responses={201: TeamOutput})
    def create(self, request):
        data = self.validated(TeamCreateInput)
        team = services.team_create(organization=self.organization, actor=request.user, **data)
        return self.render(TeamOutput, team, status_code=status.HTTP_201_CREATED)

    @extend_schema(request=TeamUpdateInput, responses=TeamOutput)
    def partial_update(self, request, pk=None):
        team = self.get_object()
        data = self.validated(TeamUpdateInput, partial=True)
        if "name" in data:
            data["name"] = data["name"].strip()
        services.team_update(team=team, actor=request.user, **data)
        return self.render(TeamOutput, self.get_object())

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None):
        services.team_delete(team=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=TeamMemberInput,
        responses=TeamOutput,
        summary="Add a member of the organization",
        operation_id="teams_members_add",
    )
    @action(detail=True, methods=["post"], url_path="members")
    def add_member(self, request, pk=None):
        team = self.get_object()
        data = self.validated(TeamMemberInput)
        services.team_member_add(team=team, user=data["user"], actor=request.user)
        return self.render(TeamOutput, self.get_object())

    @extend_schema(
        parameters=[OpenApiParameter("user_id", OpenApiTypes.INT, OpenApiParameter.PATH)],
        request=None,
        responses={204: None},
        summary="Remove a user from the team",
        operation_id="teams_members_remove",
    )
    @action(detail=True, methods=["delete"], url_path=r"members/(?P<user_id>\d+)")
    def remove_member(self, request, pk=None, user_id=None):
        team = self.get_object()
        user = get_object_or_404(team.members.all(), pk=user_id)
        services.team_member_remove(team=team, user=user, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
