"""Invitations through the API: owners and admins invite by e-mail, list and revoke.

The one-time link is in the response to the POST only (and in the e-mail); lists show
the status, never the link. No field names a user outside the organization.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.exceptions import ValidationError as ApiValidationError
from rest_framework.response import Response

from console.api.base import Conflict, ScopedViewSet
from console.api.permissions import MANAGERS
from console.models import Invitation, Role
from console.signin import invitations


class InvitationOutput(serializers.ModelSerializer):
    status = serializers.CharField(read_only=True)

    class Meta:
        model = Invitation
        fields = ["id", "email", "role", "status", "created_at", "expires_at", "accepted_at", "revoked_at"]
        read_only_fields = fields


class InvitationCreatedOutput(InvitationOutput):
    url = serializers.CharField(read_only=True, help_text="The one-time link; shown only in this response.")
    emailed = serializers.BooleanField(read_only=True)

    class Meta(InvitationOutput.Meta):
        fields = [*InvitationOutput.Meta.fields, "url", "emailed"]
        read_only_fields = fields


class InvitationCreateInput(serializers.Serializer):
    email = serializers.EmailField()
    role = serializers.ChoiceField(choices=Role.choices, default=Role.MEMBER)
    send_email = serializers.BooleanField(default=True, help_text="Mail the link to the address.")


def _api_error(exc: DjangoValidationError) -> ApiValidationError:
    return ApiValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)


@extend_schema(tags=["members"])
class InvitationViewSet(ScopedViewSet):
    """Invitations to join the organization (owners and admins)."""

    queryset = Invitation.objects.none()
    serializer_class = InvitationOutput
    read_roles = MANAGERS
    write_roles = MANAGERS

    def get_queryset(self) -> QuerySet[Invitation]:
        if self.schema_only:
            return Invitation.objects.none()
        return invitations.invitations_for(self.organization).order_by("-created_at", "-id")

    @extend_schema(responses=InvitationOutput(many=True))
    def list(self, request):
        return self.render_list(InvitationOutput, self.get_queryset())

    @extend_schema(responses=InvitationOutput)
    def retrieve(self, request, pk=None):
        return self.render(InvitationOutput, self.get_object())

    @extend_schema(
        request=InvitationCreateInput,
        responses={201: InvitationCreatedOutput},
        summary="Invite someone by e-mail with a role (the link is in this response only)",
    )
    def create(self, request):
        data = self.validated(InvitationCreateInput)
        if data["role"] == Role.OWNER and self.membership.role != Role.OWNER:
            raise PermissionDenied("Only an owner can invite an owner.")
        try:
            issued = invitations.invitation_create(
                organization=self.organization,
                email=data["email"],
                role=data["role"],
                actor=request.user,
                base_url=request.build_absolute_uri("/"),
                send=data["send_email"],
            )
        except DjangoValidationError as exc:
            raise _api_error(exc) from exc
        invitation = issued.invitation
        invitation.url = issued.url
        invitation.emailed = issued.emailed
        return self.render(InvitationCreatedOutput, invitation, status_code=status.HTTP_201_CREATED)

    @extend_schema(responses={204: None}, summary="Revoke a pending invitation")
    def destroy(self, request, pk=None):
        invitation = self.get_object()
        try:
            invitations.invitation_revoke(invitation=invitation, actor=request.user)
        except DjangoValidationError as exc:
            # Accepted, revoked or expired already: the invitation's state, not the request, is wrong.
            raise Conflict(" ".join(exc.messages)) from exc
        return Response(status=status.HTTP_204_NO_CONTENT)
