"""Sign-in policies of organizations and the group mapping of single sign-on."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.events import audit_record
from console.models import Membership, Organization, Role, SignInPolicy, SsoGroupMapping, SsoIdentity
from console.services import membership_remove, membership_set

# The strongest role wins when several of a user's groups map into one organization.
ROLE_RANK = {Role.MEMBER: 0, Role.FINANCE: 1, Role.ADMIN: 2, Role.OWNER: 3}


def _actor(user: AbstractBaseUser | None) -> str:
    return getattr(user, "username", "") or "system"


def policy_for(organization: Organization) -> SignInPolicy:
    """The organization's policy (an unsaved default when it never set one)."""
    return SignInPolicy.objects.filter(organization=organization).first() or SignInPolicy(organization=organization)


def policy_update(
    *, organization: Organization, require_sso: bool, require_totp: bool, actor: AbstractBaseUser | None = None
) -> SignInPolicy:
    with transaction.atomic():
        policy, _ = SignInPolicy.objects.select_for_update().get_or_create(organization=organization)
        policy.require_sso = require_sso
        policy.require_totp = require_totp
        policy.updated_at = timezone.now()
        policy.save()
        audit_record(
            action="signin_policy.update",
            organization_id=organization.id,
            actor=_actor(actor),
            target=organization.slug,
            data={"require_sso": require_sso, "require_totp": require_totp},
        )
    return policy


def sso_required_for(user: AbstractBaseUser) -> bool:
    """True when an organization the user belongs to accepts single sign-on only."""
    return SignInPolicy.objects.filter(organization__memberships__user=user, require_sso=True).exists()


def totp_required_for(user: AbstractBaseUser) -> bool:
    return SignInPolicy.objects.filter(organization__memberships__user=user, require_totp=True).exists()


def mapping_set(
    *, organization: Organization, group: str, role: str, actor: AbstractBaseUser | None = None
) -> SsoGroupMapping:
    group = (group or "").strip()
    if not group:
        raise ValidationError({"group": "Name the identity-provider group."})
    if role not in Role.values:
        raise ValidationError({"role": f"Unknown role {role!r}."})
    with transaction.atomic():
        mapping, _ = SsoGroupMapping.objects.update_or_create(
            organization=organization, group=group, defaults={"role": role}
        )
        audit_record(
            action="sso_mapping.set",
            organization_id=organization.id,
            actor=_actor(actor),
            target=group,
            data={"role": role},
        )
    return mapping


def mapping_delete(*, mapping: SsoGroupMapping, actor: AbstractBaseUser | None = None) -> None:
    with transaction.atomic():
        org_id, group = mapping.organization_id, mapping.group
        mapping.delete()
        audit_record(action="sso_mapping.delete", organization_id=org_id, actor=_actor(actor), target=group)


def roles_from_groups(groups: list[str]) -> dict[int, str]:
    """Organization id -> the strongest role the groups map to."""
    roles: dict[int, str] = {}
    for mapping in SsoGroupMapping.objects.filter(group__in=groups):
        current = roles.get(mapping.organization_id)
        if current is None or ROLE_RANK[mapping.role] > ROLE_RANK[current]:
            roles[mapping.organization_id] = mapping.role
    return roles


def memberships_sync(*, user: AbstractBaseUser, identity: SsoIdentity, groups: list[str]) -> dict[int, str]:
    """Make the user's memberships follow their groups at every single sign-on.

    Mapped organizations get the mapped role; a membership that came from a mapping
    goes when the groups no longer map there. Memberships given by invitation are left
    alone (unless a mapping now manages them)."""
    wanted = roles_from_groups(groups)
    managed = set(identity.managed_organizations or [])
    with transaction.atomic():
        for org in Organization.objects.filter(id__in=wanted):
            membership = Membership.objects.filter(organization=org, user=user).first()
            if membership is None or membership.role != wanted[org.id]:
                try:
                    membership_set(organization=org, user=user, role=wanted[org.id], actor=None)
                except ValidationError:
                    continue  # e.g. the last owner keeps the role until another owner exists
            managed.add(org.id)
        for org_id in managed - set(wanted):
            membership = Membership.objects.filter(organization_id=org_id, user=user).select_related("organization")
            membership = membership.first()
            if membership is not None:
                try:
                    membership_remove(membership=membership, actor=None)
                except ValidationError:
                    continue
            managed.discard(org_id)
        identity.managed_organizations = sorted(managed)
        identity.last_login_at = timezone.now()
        identity.save(update_fields=["managed_organizations", "last_login_at"])
    return wanted
