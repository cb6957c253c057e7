"""Tenancy and identity: organizations, teams, memberships, keys.

These models are the base every other app may import.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    FINANCE = "finance", "Finance (read-only spend)"
    MEMBER = "member", "Member"


# Roles allowed to change the organization's configuration.
MANAGER_ROLES = frozenset({Role.OWNER, Role.ADMIN})
# The roles each role may give an API token: never more than itself.
TOKEN_ROLES_FOR = {
    Role.OWNER: (Role.OWNER, Role.ADMIN, Role.FINANCE, Role.MEMBER),
    Role.ADMIN: (Role.ADMIN, Role.FINANCE, Role.MEMBER),
    Role.FINANCE: (Role.FINANCE,),
    Role.MEMBER: (Role.MEMBER,),
}


class DataClass(models.TextChoices):
    PUBLIC = "public", "Public"
    INTERNAL = "internal", "Internal"
    CONFIDENTIAL = "confidential", "Confidential"
    PII = "pii", "PII"
    PHI = "phi", "PHI"
    PCI = "pci", "PCI"
    RESTRICTED = "restricted", "Restricted"


class Organization(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    time_zone = models.CharField(max_length=64, default="UTC")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Team(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="teams")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="gatehouse_teams")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="team_unique_name_per_org")]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["organization", "user__username"]
        constraints = [models.UniqueConstraint(fields=["organization", "user"], name="membership_unique")]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"

    @property
    def can_manage(self) -> bool:
        return self.role in MANAGER_ROLES


class ApiKey(models.Model):
    """A virtual key. Only a SHA-256 hash of the secret is stored."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="api_keys")
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="api_keys")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="api_keys"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    name = models.CharField(max_length=200)
    prefix = models.CharField(max_length=16, help_text="Shown in lists so a key can be recognised.")
    secret_hash = models.CharField(max_length=64, unique=True)
    allowed_models = models.JSONField(default=list, blank=True, help_text="Empty means every model.")
    data_classification = models.CharField(max_length=32, choices=DataClass.choices, default=DataClass.INTERNAL)
    app_name = models.CharField(max_length=200, blank=True)
    tags = models.JSONField(default=list, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > timezone.now()

    @property
    def status(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= timezone.now():
            return "expired"
        return "active"


class AdminToken(models.Model):
    """A management-API token acting as one member of one organization."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="admin_tokens")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="admin_tokens")
    name = models.CharField(max_length=200)
    prefix = models.CharField(max_length=16)
    secret_hash = models.CharField(max_length=64, unique=True)
    # The role the token acts with; never more than its user's own role ("" = the user's role).
    role = models.CharField(max_length=16, choices=Role.choices, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def status(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= timezone.now():
            return "expired"
        return "active"


class SeedRecord(models.Model):
    """What the demo seeding created once, by kind and name.

    Seeding consults it so a restart never recreates what an operator deleted and
    never adds to what an operator configured.
    """

    kind = models.CharField(max_length=32)  # "provider" | "deployment"
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["kind", "name"]
        constraints = [models.UniqueConstraint(fields=["kind", "name"], name="seed_record_unique")]

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"


class ChangeEvent(models.Model):
    """An append-only feed of configuration changes.

    Written in the transaction of the change it announces; every gateway process
    reads it through `console.changes.ChangeFeed` (which tolerates ids committing
    out of order) to drop cached keys and rebuild its snapshots, so a revocation
    takes effect on every host within a poll interval. Pruned after a retention.
    """

    topic = models.CharField(max_length=32)  # "key", "catalog", ...
    ref = models.CharField(max_length=128, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["created_at"], name="console_change_created_idx")]

    def __str__(self) -> str:
        return f"{self.topic}:{self.ref}"


class Invitation(models.Model):
    """An invitation to join an organization with a role, by e-mail.

    Only a SHA-256 hash of the one-time token is stored; the link is shown once to the
    admin who made it and e-mailed to the invitee. Accepting, revoking or expiry ends it.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "-created_at"], name="console_invite_org_idx")]

    def __str__(self) -> str:
        return f"{self.email} to {self.organization} ({self.role})"

    @property
    def status(self) -> str:
        if self.accepted_at is not None:
            return "accepted"
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "pending"


class SignInPolicy(models.Model):
    """How the members of one organization must sign in (absent row: no requirement)."""

    organization = models.OneToOneField(Organization, on_delete=models.CASCADE, related_name="signin_policy")
    require_sso = models.BooleanField(
        default=False, help_text="Members sign in through single sign-on only; passwords are refused."
    )
    require_totp = models.BooleanField(
        default=False, help_text="Members who sign in with a password must use an authenticator app code too."
    )
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"sign-in policy of {self.organization}"


class SsoGroupMapping(models.Model):
    """An identity-provider group that makes its users members of this organization with a role."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="sso_mappings")
    group = models.CharField(max_length=200)
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["group"]
        constraints = [models.UniqueConstraint(fields=["organization", "group"], name="sso_mapping_unique_group")]

    def __str__(self) -> str:
        return f"{self.group} -> {self.organization} ({self.role})"


class SsoIdentity(models.Model):
    """The identity-provider subject a user signs in as, and the memberships that sign-in manages."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sso_identity")
    issuer = models.CharField(max_length=500)
    subject = models.CharField(max_length=255)
    # Organization ids whose membership came from a group mapping (and goes when the group does).
    managed_organizations = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_login_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["issuer", "subject"], name="sso_identity_unique_subject")]

    def __str__(self) -> str:
        return f"{self.user} as {self.subject}"
