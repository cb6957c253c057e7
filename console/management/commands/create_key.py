"""manage.py create_key: issue a virtual key from the command line; the secret is shown once."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from console.models import DataClass, Organization, Team
from console.services import api_key_create
from providers.facade import models_known


def _csv(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


class Command(BaseCommand):
    help = "Create a virtual API key and print its secret (once) and prefix."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--org", required=True, help="Organization slug.")
        parser.add_argument("--name", required=True, help="A name that says what the key is for.")
        parser.add_argument("--team", default="", help="Team name within the organization.")
        parser.add_argument("--user", default="", help="Username of a member the key acts for.")
        parser.add_argument("--models", default="", help="Comma-separated models the key may use (default: all).")
        parser.add_argument("--expires-in-days", type=int, default=None, help="Expire the key after N days.")
        parser.add_argument(
            "--classification",
            default=DataClass.INTERNAL.value,
            choices=DataClass.values,
            help="Default data classification of the key's requests (default internal).",
        )
        parser.add_argument("--app-name", default="", help="The application the key belongs to.")
        parser.add_argument("--tags", default="", help="Comma-separated tags added to every request's usage.")
        parser.add_argument("--secret-only", action="store_true", help="Print only the secret (for scripts).")

    def handle(self, *args, **options) -> None:
        organization = Organization.objects.filter(slug=options["org"]).first()
        if organization is None:
            raise CommandError(f"No organization with slug {options['org']!r}.")
        team = None
        if options["team"]:
            team = Team.objects.filter(organization=organization, name=options["team"]).first()
            if team is None:
                raise CommandError(f"No team {options['team']!r} in {organization.slug}.")
        user = None
        if options["user"]:
            user = get_user_model().objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"No user {options['user']!r}.")
        models = _csv(options["models"])
        unknown = sorted(set(models) - models_known(models, organization_id=organization.id))
        if unknown:
            raise CommandError(f"--models: unknown model {', '.join(map(repr, unknown))}.")
        expires_at = None
        if options["expires_in_days"] is not None:
            if options["expires_in_days"] <= 0:
                raise CommandError("--expires-in-days must be 1 or more.")
            expires_at = timezone.now() + timedelta(days=options["expires_in_days"])
        try:
            issued = api_key_create(
                organization=organization,
                name=options["name"],
                team=team,
                user=user,
                allowed_models=models,
                expires_at=expires_at,
                data_classification=options["classification"],
                app_name=options["app_name"],
                tags=_csv(options["tags"]),
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        if options["secret_only"]:
            self.stdout.write(issued.secret)
            return
        key = issued.key
        scope = f" for team {team.name}" if team else ""
        self.stdout.write(f"Created key {key.name!r} in {organization.slug}{scope}; prefix {key.prefix}")
        if expires_at:
            self.stdout.write(f"Expires: {expires_at:%Y-%m-%d %H:%M} UTC")
        self.stdout.write(f"Secret (shown once, store it now): {issued.secret}")
