"""manage.py create_team: a team in an organization, with members."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from console.management.commands._common import organization_get, user_get
from console.services import team_create, team_member_add


class Command(BaseCommand):
    help = "Create a team in an organization and add members to it (they must be members of the organization)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--org", required=True, help="Organization slug.")
        parser.add_argument("--name", required=True)
        parser.add_argument("--description", default="")
        parser.add_argument("--members", default="", help="Comma-separated usernames.")

    def handle(self, *args, **options) -> None:
        organization = organization_get(options["org"])
        users = [user_get(name.strip()) for name in options["members"].split(",") if name.strip()]
        try:
            with transaction.atomic():
                team = team_create(organization=organization, name=options["name"], description=options["description"])
                for user in users:
                    team_member_add(team=team, user=user)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        members = f" with {', '.join(u.get_username() for u in users)}" if users else ""
        self.stdout.write(f"Created team {team.name!r} in {organization.slug}{members}.")
