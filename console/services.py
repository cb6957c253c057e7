"""Writes for tenancy and keys. Every change is audited and announced on the change feed."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from audit.events import audit_record
from console.changes import change_record
from console.models import (
    TOKEN_ROLES_FOR,
    AdminToken,
    ApiKey,
    DataClass,
    Membership,
    Organization,
    Role,
    Team,
)

KEY_PREFIX = "sk-gh-"
ADMIN_TOKEN_PREFIX = "gha-"
DISPLAY_PREFIX_LENGTH = 12


def secret_hash(secret: str) -> str:
    # Secrets carry 240 bits of entropy, so a fast hash is enough and keeps lookups cheap.
    return hashlib.sha256(secret.encode()).hexdigest()


def change_publish(*, topic: str, ref: str = "") -> None:
    """Tell every gateway process that cached config is stale.

    The row is written in the caller's transaction, so a committed change always
    has its announcement and a rolled-back one never does; with Redis configured it
    is also published after commit (see `console.changes`)."""
    change_record(topic=topic, ref=ref, redis_url=settings.REDIS_URL, channel=settings.GATEHOUSE["CHANGE_FEED_CHANNEL"])


def _actor(user: AbstractBaseUser | None) -> str:
    return getattr(user, "username", "") or "system"


def organization_create(*, name: str, slug: str = "", owner: AbstractBaseUser | None = None) -> Organization:
    slug = slug or slugify(name)[:80]
    if Organization.objects.filter(slug=slug).exists():
        raise ValidationError({"slug": f"An organization with slug {slug!r} exists already."})
    with transaction.atomic():
        org = Organization.objects.create(name=name, slug=slug)
        if owner is not None:
            Membership.objects.create(organization=org, user=owner, role=Role.OWNER)
        audit_record(action="organization.create", organization_id=org.id, actor=_actor(owner), target=org.slug)
    return org


def user_create(
    *, username: str, email: str = "", password: str | None = None, first_name: str = "", last_name: str = ""
) -> AbstractBaseUser:
    User = get_user_model()
    if User.objects.filter(username=username).exists():
        raise ValidationError({"username": f"User {username!r} exists already."})
    user = User(username=username, email=email, first_name=first_name, last_name=last_name)
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.save()
    return user


def membership_set(
    *, organization: Organization, user: AbstractBaseUser, role: str, actor: AbstractBaseUser | None = None
) -> Membership:
    if role not in Role.values:
        raise ValidationError({"role": f"Unknown role {role!r}."})
    with transaction.atomic():
        membership, created = Membership.objects.get_or_create(
            organization=organization, user=user, defaults={"role": role}
        )
        if not created and membership.role != role:
            if membership.role == Role.OWNER and role != Role.OWNER:
                owners = Membership.objects.filter(organization=organization, role=Role.OWNER).count()
                if owners <= 1:
                    raise ValidationError({"role": "An organization keeps at least one owner."})
            membership.role = role
            membership.save(update_fields=["role"])
        audit_record(
            action="membership.set",
            organization_id=organization.id,
            actor=_actor(actor),
            target=user.get_username(),
            data={"role": role},
        )
    return membership


def membership_remove(*, membership: Membership, actor: AbstractBaseUser | None = None) -> None:
    org = membership.organization
    if membership.role == Role.OWNER and Membership.objects.filter(organization=org, role=Role.OWNER).count() <= 1:
        raise ValidationError("An organization keeps at least one owner.")
    with transaction.atomic():
        user = membership.user
        username = user.get_username()
        # A departed member's keys stop working, and they leave the org's teams.
        keys = list(ApiKey.objects.filter(organization=org, user=user, revoked_at__isnull=True))
        for key in keys:
            api_key_revoke(key=key, actor=actor)
        for team in Team.objects.filter(organization=org, members=user):
            team.members.remove(user)
        membership.delete()
        audit_record(
            action="membership.remove",
            organization_id=org.id,
            actor=_actor(actor),
            target=username,
            data={"keys_revoked": len(keys)},
        )


def team_create(
    *, organization: Organization, name: str, description: str = "", actor: AbstractBaseUser | None = None
) -> Team:
    name = name.strip()
    if not name:
        raise ValidationError({"name": "A team needs a name."})
    if Team.objects.filter(organization=organization, name=name).exists():
        raise ValidationError({"name": f"A team named {name!r} exists already."})
    with transaction.atomic():
        team = Team.objects.create(organization=organization, name=name, description=description)
        audit_record(action="team.create", organization_id=organization.id, actor=_actor(actor), target=name)
    return team


def team_update(*, team: Team, actor: AbstractBaseUser | None = None, **fields) -> Team:
    name = fields.get("name")
    if (
        name is not None
        and Team.objects.filter(organization_id=team.organization_id, name=name).exclude(pk=team.pk).exists()
    ):
        raise ValidationError({"name": f"A team named {name!r} exists already."})
    for field, value in fields.items():
        setattr(team, field, value)
    team.full_clean()
    with transaction.atomic():
        team.save()
        audit_record(action="team.update", organization_id=team.organization_id, actor=_actor(actor), target=team.name)
    return team


def team_delete(*, team: Team, actor: AbstractBaseUser | None = None) -> None:
    with transaction.atomic():
        org_id, name = team.organization_id, team.name
        team.delete()
        audit_record(action="team.delete", organization_id=org_id, actor=_actor(actor), target=name)
        change_publish(topic="key", ref="*")


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    secret: str  # shown once; never stored


def api_key_create(
    *,
    organization: Organization,
    name: str,
    team: Team | None = None,
    user: AbstractBaseUser | None = None,
    allowed_models: list[str] | None = None,
    expires_at: datetime | None = None,
    data_classification: str = DataClass.INTERNAL,
    app_name: str = "",
    tags: list[str] | None = None,
    metadata: dict | None = None,
    actor: AbstractBaseUser | None = None,
) -> IssuedKey:
    name = name.strip()
    if not name:
        raise ValidationError({"name": "A key needs a name."})
    if team is not None and team.organization_id != organization.id:
        raise ValidationError({"team": "The team belongs to another organization."})
    if user is not None and not Membership.objects.filter(organization=organization, user=user).exists():
        raise ValidationError({"user": "The user is not a member of this organization."})
    if data_classification not in DataClass.values:
        raise ValidationError({"data_classification": f"Unknown data classification {data_classification!r}."})
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": "The expiry lies in the past."})
    secret = KEY_PREFIX + secrets.token_urlsafe(30)
    with transaction.atomic():
        key = ApiKey.objects.create(
            organization=organization,
            team=team,
            user=user,
            created_by=actor if actor is not None and actor.pk else None,
            name=name,
            prefix=secret[:DISPLAY_PREFIX_LENGTH],
            secret_hash=secret_hash(secret),
            allowed_models=sorted(set(allowed_models or [])),
            expires_at=expires_at,
            data_classification=data_classification,
            app_name=app_name,
            tags=list(tags or []),
            metadata=dict(metadata or {}),
        )
        audit_record(
            action="key.create",
            organization_id=organization.id,
            actor=_actor(actor),
            target=key.prefix,
            data={"name": name, "allowed_models": key.allowed_models},
        )
        # A key created after a failed lookup of the same secret must not stay refused.
        change_publish(topic="key", ref=key.secret_hash)
    return IssuedKey(key=key, secret=secret)


def api_key_revoke(*, key: ApiKey, actor: AbstractBaseUser | None = None) -> ApiKey:
    if key.revoked_at is not None:
        return key
    with transaction.atomic():
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        audit_record(action="key.revoke", organization_id=key.organization_id, actor=_actor(actor), target=key.prefix)
        change_publish(topic="key", ref=key.secret_hash)
    return key


def api_key_update(*, key: ApiKey, actor: AbstractBaseUser | None = None, **fields) -> ApiKey:
    allowed = {"name", "allowed_models", "expires_at", "data_classification", "app_name", "tags", "metadata", "team"}
    unknown = set(fields) - allowed
    if unknown:
        raise ValidationError(f"Cannot change {', '.join(sorted(unknown))}.")
    for field, value in fields.items():
        setattr(key, field, value)
    with transaction.atomic():
        key.save()
        audit_record(
            action="key.update",
            organization_id=key.organization_id,
            actor=_actor(actor),
            target=key.prefix,
            data={k: str(v) for k, v in fields.items()},
        )
        change_publish(topic="key", ref=key.secret_hash)
    return key


def api_key_rotate(*, key: ApiKey, actor: AbstractBaseUser | None = None) -> IssuedKey:
    """Issue a new secret with the same settings and revoke the old one."""
    if key.status != "active":
        raise ValidationError(f"Only an active key can be rotated; this one is {key.status}.")
    with transaction.atomic():
        issued = api_key_create(
            organization=key.organization,
            name=key.name,
            team=key.team,
            user=key.user,
            allowed_models=key.allowed_models,
            expires_at=key.expires_at if key.expires_at and key.expires_at > timezone.now() else None,
            data_classification=key.data_classification,
            app_name=key.app_name,
            tags=key.tags,
            metadata={**key.metadata, "rotated_from": key.prefix},
            actor=actor,
        )
        api_key_revoke(key=key, actor=actor)
    return issued


@dataclass(frozen=True)
class IssuedToken:
    token: AdminToken
    secret: str


def admin_token_create(
    *,
    organization: Organization,
    user: AbstractBaseUser,
    name: str,
    role: str = "",
    expires_at: datetime | None = None,
    actor: AbstractBaseUser | None = None,
) -> IssuedToken:
    """Issue a management-API token acting as `user`, with `role` (default: the user's own) at most."""
    membership = Membership.objects.filter(organization=organization, user=user).first()
    if membership is None:
        raise ValidationError({"user": "The user is not a member of this organization."})
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "A token needs a name that says what it is for."})
    role = role or membership.role
    if role not in TOKEN_ROLES_FOR.get(membership.role, ()):
        raise ValidationError({"role": f"A {membership.role} cannot issue a token with the {role} role."})
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": "The expiry must be in the future."})
    secret = ADMIN_TOKEN_PREFIX + secrets.token_urlsafe(30)
    with transaction.atomic():
        token = AdminToken.objects.create(
            organization=organization,
            user=user,
            name=name,
            role=role,
            expires_at=expires_at,
            prefix=secret[:DISPLAY_PREFIX_LENGTH],
            secret_hash=secret_hash(secret),
        )
        audit_record(
            action="admin_token.create",
            organization_id=organization.id,
            actor=_actor(actor or user),
            target=name,
            data={"role": role, "expires_at": expires_at.isoformat() if expires_at else ""},
        )
    return IssuedToken(token=token, secret=secret)


def organization_update(
    *,
    organization: Organization,
    actor: AbstractBaseUser | None = None,
    name: str | None = None,
    time_zone: str | None = None,
) -> Organization:
    """Rename an organization or change the time zone its days are counted in."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    changed: dict[str, str] = {}
    if name is not None:
        name = name.strip()
        if not name:
            raise ValidationError({"name": "An organization needs a name."})
        changed["name"] = name
    if time_zone is not None:
        try:
            ZoneInfo(time_zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValidationError({"time_zone": f"Unknown time zone {time_zone!r}."}) from exc
        changed["time_zone"] = time_zone
    changed = {field: value for field, value in changed.items() if getattr(organization, field) != value}
    if not changed:
        return organization
    with transaction.atomic():
        for field, value in changed.items():
            setattr(organization, field, value)
        organization.save(update_fields=list(changed))
        audit_record(
            action="organization.update",
            organization_id=organization.id,
            actor=_actor(actor),
            target=organization.slug,
            data=changed,
        )
        if "time_zone" in changed:
            # Budget periods are calendar periods in the organization's time zone.
            change_publish(topic="budgets", ref=f"org:{organization.id}")
    return organization


def team_member_add(*, team: Team, user: AbstractBaseUser, actor: AbstractBaseUser | None = None) -> Team:
    if not Membership.objects.filter(organization_id=team.organization_id, user=user).exists():
        raise ValidationError({"user": "The user is not a member of this organization."})
    with transaction.atomic():
        team.members.add(user)
        audit_record(
            action="team.member_add",
            organization_id=team.organization_id,
            actor=_actor(actor),
            target=team.name,
            data={"user": user.get_username()},
        )
    return team


def team_member_remove(*, team: Team, user: AbstractBaseUser, actor: AbstractBaseUser | None = None) -> Team:
    with transaction.atomic():
        team.members.remove(user)
        audit_record(
            action="team.member_remove",
            organization_id=team.organization_id,
            actor=_actor(actor),
            target=team.name,
            data={"user": user.get_username()},
        )
    return team


def admin_token_revoke(*, token: AdminToken, actor: AbstractBaseUser | None = None) -> AdminToken:
    if token.revoked_at is not None:
        return token
    with transaction.atomic():
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(
            action="admin_token.revoke", organization_id=token.organization_id, actor=_actor(actor), target=token.prefix
        )
    return token
