"""Users and their memberships (roles) in the current organization.

Only an owner grants, changes or removes the owner role, so an admin cannot make
themselves (or anyone) an owner.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from console import services
from console.api.base import ScopedViewSet
from console.api.permissions import MANAGERS
from console.models import Membership, Role

OWNER_ONLY = "Only an owner can grant, change or remove the owner role."


class UserOutput(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    email = serializers.EmailField()
    first_name = serializers.CharField()
    last_name = serializers.CharField()


class MemberOutput(serializers.ModelSerializer):
    user = UserOutput(read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "user", "role", "created_at"]
        read_only_fields = fields


class MemberCreateInput(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    email = serializers.EmailField(required=False, allow_blank=True, default="")
    password = serializers.CharField(
        required=False,
        allow_blank=True,
        write_only=True,
        trim_whitespace=False,
        style={"input_type": "password"},
        help_text="Only for a new user; without it the user cannot sign in with a password.",
    )
    role = serializers.ChoiceField(choices=Role.choices)

    def validate(self, attrs: dict) -> dict:
        password = attrs.get("password")
        User = get_user_model()
        existing = User.objects.filter(username=attrs["username"]).first()
        if existing is not None:
            organization = self.context["organization"]
            if Membership.objects.filter(organization=organization, user=existing).exists():
                raise serializers.ValidationError(
                    {"username": "This user is a member already; change the role with PATCH."}
                )
        elif password:
            candidate = User(username=attrs["username"], email=attrs.get("email", ""))
            try:
                password_validation.validate_password(password, user=candidate)
            except DjangoValidationError as exc:
                raise serializers.ValidationError({"password": list(exc.messages)}) from exc
        attrs["existing_user"] = existing
        return attrs


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

    @extend_schema(
        request=MemberCreateInput,
        responses={201: MemberOutput},
        summary="Add a user to the organization (creating the user when new)",
    )
    def create(self, request):
        data = self.validated(MemberCreateInput)
        self._require_owner_for(data["role"])
        with transaction.atomic():
            user = data["existing_user"]
            if user is None:
                # Email and password apply to new users only: an existing account is never changed here.
                user = services.user_create(
                    username=data["username"], email=data["email"], password=data.get("password") or None
                )
            membership = services.membership_set(
                organization=self.organization, user=user, role=data["role"], actor=request.user
            )
        return self.render(MemberOutput, membership, status_code=status.HTTP_201_CREATED)

    @extend_schema(request=MemberUpdateInput, responses=MemberOutput, summary="Change a member's role")
    def partial_update(self, request, pk=None):
        membership = self.get_object()
        data = self.validated(MemberUpdateInput)
        self._require_owner_for(membership.role, data["role"])
        services.membership_set(
            organization=self.organization, user=membership.user, role=data["role"], actor=request.user
        )
        return self.render(MemberOutput, self.get_object())

    @extend_schema(responses={204: None}, summary="Remove a member from the organization")
    def destroy(self, request, pk=None):
        membership = self.get_object()
        self._require_owner_for(membership.role)
        services.membership_remove(membership=membership, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
