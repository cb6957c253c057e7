"""manage.py seed_demo: the demo organization, simulator providers and keys (idempotent)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from console.demo import demo_password_reset, demo_seed


class Command(BaseCommand):
    help = (
        "Create the demo: catalog, Acme Corp with admin/finance/dev and three teams, simulator providers with "
        "deployments, a key per team, and real providers for vendor API keys found in the environment."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--key-file",
            type=Path,
            default=None,
            help="Where the Research team's demo key is written (default: <data dir>/demo_key.txt, mode 0600).",
        )

        parser.add_argument(
            "--reset-password",
            action="store_true",
            help="Only give the demo users (admin, finance, dev) a new random password and print it.",
        )

    def handle(self, *args, **options) -> None:
        if options["reset_password"]:
            try:
                password = demo_password_reset()
            except ValidationError as exc:
                raise CommandError("; ".join(exc.messages)) from exc
            self.stdout.write(f"Console login: admin, finance or dev with password {password}")
            return
        key_file = options["key_file"] or Path(settings.DATA_DIR) / "demo_key.txt"
        result = demo_seed(key_file=key_file)
        for message in result.messages:
            self.stdout.write(message)
        if result.changed:
            made = ", ".join(f"{what} {count}" for what, count in result.created.items() if count)
            self.stdout.write(self.style.SUCCESS(f"Demo seeded; created: {made}."))
        else:
            self.stdout.write("Demo already in place; nothing created.")
