"""Invitations: how someone joins an organization.

An admin invites an e-mail address with a role; the invitee gets a one-time link (by
e-mail, or copied by the admin) that expires. Whoever opens the link signs in or
creates an account and joins with that role. Nothing here reveals whether an e-mail
address or a username belongs to anyone outside the organization.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone

from audit.events import audit_record
from console.models import Invitation, Membership, Organization, Role
from console.services import membership_set, secret_hash

TOKEN_PREFIX = "ghi-"


@dataclass(frozen=True)
class IssuedInvitation:
    invitation: Invitation
    token: str  # in the link only; never stored
    url: str
    emailed: bool


def _actor(user: AbstractBaseUser | None) -> str:
    return getattr(user, "username", "") or "system"


def invitation_url(*, token: str, base_url: str = "") -> str:
    base = (settings.GATEHOUSE_SIGNIN["BASE_URL"] or base_url).rstrip("/")
    return f"{base}{reverse('console:invitation-accept', args=[token])}"


def invitations_for(organization: Organization) -> QuerySet[Invitation]:
    return Invitation.objects.filter(organization=organization).select_related("created_by").order_by("-created_at")


def invitation_by_token(token: str) -> Invitation | None:
    """The pending invitation this token opens, or None (unknown, used, revoked or expired alike)."""
    if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 100:
        return None
    invitation = Invitation.objects.select_related("organization").filter(token_hash=secret_hash(token)).first()
    if invitation is None or invitation.status != "pending":
        return None
    return invitation


def invitation_create(
    *,
    organization: Organization,
    email: str,
    role: str,
    actor: AbstractBaseUser,
    base_url: str = "",
    send: bool = True,
) -> IssuedInvitation:
    """Invite `email` with `role`; only an owner invites owners. Mails the link when `send`."""
    email = (email or "").strip()
    if not email or "@" not in email:
        raise ValidationError({"email": "Enter an e-mail address."})
    if role not in Role.values:
        raise ValidationError({"role": f"Unknown role {role!r}."})
    actor_role = Membership.objects.filter(organization=organization, user=actor).values_list("role", flat=True).first()
    if role == Role.OWNER and actor_role != Role.OWNER:
        raise ValidationError({"role": "Only an owner can invite an owner."})
    # Only this organization's own members are looked at: an address used elsewhere tells nothing.
    if Membership.objects.filter(organization=organization, user__email__iexact=email).exists():
        raise ValidationError({"email": "A member of this organization uses this address already."})
    token = TOKEN_PREFIX + secrets.token_urlsafe(30)
    now = timezone.now()
    with transaction.atomic():
        invitation = Invitation.objects.create(
            organization=organization,
            email=email,
            role=role,
            token_hash=secret_hash(token),
            created_by=actor if actor.pk else None,
            created_at=now,
            expires_at=now + timedelta(days=settings.GATEHOUSE_SIGNIN["INVITATION_DAYS"]),
        )
        audit_record(
            action="invitation.create",
            organization_id=organization.id,
            actor=_actor(actor),
            target=email,
            data={"role": role, "invitation": invitation.id},
        )
    url = invitation_url(token=token, base_url=base_url)
    emailed = False
    if send:
        emailed = _invitation_mail(invitation=invitation, url=url, inviter=actor)
    return IssuedInvitation(invitation=invitation, token=token, url=url, emailed=emailed)


def _invitation_mail(*, invitation: Invitation, url: str, inviter: AbstractBaseUser) -> bool:
    org = invitation.organization
    days = settings.GATEHOUSE_SIGNIN["INVITATION_DAYS"]
    body = (
        f"{inviter.get_username()} invites you to {org.name} on Gatehouse as {invitation.get_role_display()}.\n\n"
        f"Open this link to sign in or create your account and join:\n{url}\n\n"
        f"The link works once and expires in {days} days. If you did not expect it, ignore this message.\n"
    )
    try:
        sent = send_mail(
            subject=f"Join {org.name} on Gatehouse",
            message=body,
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[invitation.email],
        )
    except OSError:
        # The invitation stands: the admin copies the link instead.
        return False
    return bool(sent)


def invitation_revoke(*, invitation: Invitation, actor: AbstractBaseUser | None = None) -> Invitation:
    if invitation.status != "pending":
        raise ValidationError(f"Only a pending invitation can be revoked; this one is {invitation.status}.")
    with transaction.atomic():
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])
        audit_record(
            action="invitation.revoke",
            organization_id=invitation.organization_id,
            actor=_actor(actor),
            target=invitation.email,
            data={"invitation": invitation.id},
        )
    return invitation


def invitation_accept(*, token: str, user: AbstractBaseUser) -> Membership:
    """`user` joins with the invitation's role; the token is spent. A member keeps a higher role."""
    with transaction.atomic():
        invitation = invitation_by_token(token)
        if invitation is not None:
            # Spend the token first, under a row lock, so two tabs cannot both use it.
            invitation = Invitation.objects.select_for_update().select_related("organization").get(pk=invitation.pk)
        if invitation is None or invitation.status != "pending":
            raise ValidationError("This invitation link is not valid: it was used, revoked or has expired.")
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
        org = invitation.organization
        existing = Membership.objects.filter(organization=org, user=user).first()
        if existing is not None:
            membership = existing
        else:
            membership = membership_set(organization=org, user=user, role=invitation.role, actor=invitation.created_by)
        audit_record(
            action="invitation.accept",
            organization_id=org.id,
            actor=_actor(user),
            target=invitation.email,
            data={"role": membership.role, "invitation": invitation.id},
        )
    return membership
