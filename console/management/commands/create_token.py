"""manage.py create_token: issue a management-API token (for /api/v1/); the secret is shown once."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from console.models import Membership, Organization, Role
from console.services import admin_token_create


class Command(BaseCommand):
    help = "Create an API token for the management API (/api/v1/) acting as a member; prints the secret once."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--org", required=True, help="Organization slug.")
        parser.add_argument("--user", required=True, help="Username of the member the token acts as.")
        parser.add_argument("--name", default="command line", help="What the token is for.")
        parser.add_argument(
            "--role",
            default="",
            choices=["", *Role.values],
            help="The role the token acts with (default: the user's own; never more).",
        )
        parser.add_argument("--expires-in-days", type=int, default=None, help="Expire after N days (default never).")
        parser.add_argument("--secret-only", action="store_true", help="Print only the secret (for scripts).")

    def handle(self, *args, **options) -> None:
        organization = Organization.objects.filter(slug=options["org"]).first()
        if organization is None:
            raise CommandError(f"No organization with slug {options['org']!r}.")
        user = get_user_model().objects.filter(username=options["user"]).first()
        if user is None:
            raise CommandError(f"No user {options['user']!r}.")
        if not Membership.objects.filter(organization=organization, user=user).exists():
            raise CommandError(f"{user.get_username()} is not a member of {organization.slug}.")
        expires_at = None
        if options["expires_in_days"] is not None:
            if options["expires_in_days"] <= 0:
                raise CommandError("--expires-in-days must be 1 or more.")
            expires_at = timezone.now() + timedelta(days=options["expires_in_days"])
        try:
            issued = admin_token_create(
                organization=organization,
                user=user,
                name=options["name"],
                role=options["role"],
                expires_at=expires_at,
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        if options["secret_only"]:
            self.stdout.write(issued.secret)
            return
        token = issued.token
        self.stdout.write(
            f"Created API token {token.name!r} for {user.get_username()} in {organization.slug}; "
            f"role {token.role}; prefix {token.prefix}"
        )
        if expires_at:
            self.stdout.write(f"Expires: {expires_at:%Y-%m-%d %H:%M} UTC")
        self.stdout.write(f"Secret (shown once, store it now): {issued.secret}")
        self.stdout.write('Use it as:  curl -H "Authorization: Bearer <secret>" http://127.0.0.1:8000/api/v1/keys/')
