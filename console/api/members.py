"""Users and their memberships (roles) in the current organization.

People join by invitation (`/api/v1/invitations/`); there is no way to add an existing
account by username, which would reveal accounts of other organizations.

Only an owner grants, changes or removes the owner role, so an admin cannot make
themselves (or anyone) an owner.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from console import services
from console.api.base import Conflict, ScopedViewSet
from console.api.permissions import MANAGERS
from console.models import Membership, Role

OWNER_ONLY = "Only an owner can grant, change or remove the owner role."


class UserOutput(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    email = serializers.CharField(help_text="The user's e-mail address; empty when none was given.")
    first_name = serializers.CharField()
    last_name = serializers.CharField()


class MemberOutput(serializers.ModelSerializer):
    user = UserOutput(read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "user", "role", "created_at"]
        read_only_fields = fields


class MemberUpdateInput(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


@extend_schema(tags=["members"])
class MemberViewSet(ScopedViewSet):
    """Users of the organization and their roles (owners and admins)."""

    queryset = Membership.objects.none()
    serializer_class = MemberOutput  # the representation (browsable API, OPTIONS)
    read_roles = MANAGERS
    write_roles = MANAGERS

    def get_queryset(self) -> QuerySet[Membership]:
        if self.schema_only:
            return Membership.objects.none()
        return (
            Membership.objects.filter(organization=self.organization)
            .select_related("user")
            .order_by("user__username", "id")
        )

    def _require_owner_for(self, *roles: str) -> None:
        if Role.OWNER in roles and self.membership.role != Role.OWNER:
            raise PermissionDenied(OWNER_ONLY)

    @extend_schema(responses=MemberOutput(many=True))
    def list(self, request):
        return self.render_list(MemberOutput, self.get_queryset())

    @extend_schema(responses=MemberOutput)
    def retrieve(self, request, pk=None):
        return self.render(MemberOutput, self.get_object())

    @extend_schema(request=MemberUpdateInput, responses=MemberOutput, summary="Change a member's role")
    def partial_update(self, request, pk=None):
        membership = self.get_object()
        data = self.validated(MemberUpdateInput, partial=True)
        if "role" not in data:  # PATCH without a change: the member as is
            return self.render(MemberOutput, membership)
        self._require_owner_for(membership.role, data["role"])
        services.membership_set(
            organization=self.organization, user=membership.user, role=data["role"], actor=request.user
        )
        return self.render(MemberOutput, self.get_object())

    @extend_schema(responses={204: None}, summary="Remove a member from the organization")
    def destroy(self, request, pk=None):
        membership = self.get_object()
        self._require_owner_for(membership.role)
        try:
            services.membership_remove(membership=membership, actor=request.user)
        except DjangoValidationError as exc:
            # The organization's last owner: its state, not the request, forbids the removal.
            raise Conflict(" ".join(exc.messages)) from exc
        return Response(status=status.HTTP_204_NO_CONTENT)
