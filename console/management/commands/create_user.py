"""manage.py create_user: a console user, optionally a member of an organization with a role."""

from __future__ import annotations

import secrets

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from console.management.commands._common import organization_get
from console.models import Role
from console.services import membership_set, user_create


class Command(BaseCommand):
    help = "Create a user who can sign in to the console, and add them to an organization with a role."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--username", required=True)
        parser.add_argument("--email", default="")
        parser.add_argument("--password", default="", help="Default: a random one, printed once.")
        parser.add_argument("--org", default="", help="Organization slug to add the user to.")
        parser.add_argument("--role", default=Role.MEMBER.value, choices=Role.values, help="Role in --org (member).")
        parser.add_argument("--staff", action="store_true", help="Platform staff: may manage shared providers.")

    def handle(self, *args, **options) -> None:
        organization = organization_get(options["org"]) if options["org"] else None
        password = options["password"]
        generated = not password
        password = password or secrets.token_urlsafe(12)
        try:
            with transaction.atomic():
                user = user_create(username=options["username"].strip(), email=options["email"], password=password)
                if options["staff"]:
                    user.is_staff = True
                    user.save(update_fields=["is_staff"])
                if organization is not None:
                    membership_set(organization=organization, user=user, role=options["role"])
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        where = f" as {options['role']} in {organization.slug}" if organization else ""
        self.stdout.write(f"Created user {user.get_username()}{where}.")
        if generated:
            self.stdout.write(f"Password (shown once): {password}")
