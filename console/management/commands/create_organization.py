"""manage.py create_organization: a new organization, optionally with its first owner."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from console.management.commands._common import user_get
from console.services import organization_create, organization_update


class Command(BaseCommand):
    help = "Create an organization (name, slug, time zone) and make an existing user its owner."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--name", required=True, help="The organization's display name.")
        parser.add_argument("--slug", default="", help="Short id used in URLs and commands (default: from the name).")
        parser.add_argument("--owner", default="", help="Username of an existing user who becomes its owner.")
        parser.add_argument("--time-zone", default="", help="IANA time zone its budget days are counted in (UTC).")

    def handle(self, *args, **options) -> None:
        owner = user_get(options["owner"]) if options["owner"] else None
        try:
            organization = organization_create(name=options["name"].strip(), slug=options["slug"], owner=owner)
            if options["time_zone"]:
                organization_update(organization=organization, actor=owner, time_zone=options["time_zone"])
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        hint = " (no owner yet: `create_user --org ... --role owner`)"
        who = f" with owner {owner.get_username()}" if owner else hint
        self.stdout.write(f"Created organization {organization.name!r} (slug {organization.slug}){who}.")
