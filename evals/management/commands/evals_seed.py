"""Install the starter evaluation suites for one organization (or every one)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from console.models import Organization, SeedRecord
from evals.services import starter_suites_install


class Command(BaseCommand):
    help = "Install the starter evaluation suites (classification, extraction, arithmetic)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--organization", help="Slug of the organization (default: every organization).")
        parser.add_argument("--models", default="", help="Default models of the suites, comma-separated.")
        parser.add_argument(
            "--once",
            action="store_true",
            help="Install for an organization only the first time (`make run`): suites an operator deleted "
            "or changed afterwards are left alone.",
        )

    def handle(self, *args, organization: str | None = None, models: str = "", once: bool = False, **options) -> None:
        orgs = Organization.objects.all()
        if organization:
            orgs = orgs.filter(slug=organization)
            if not orgs.exists():
                raise CommandError(f"No organization with slug {organization!r}.")
        names = [m.strip() for m in models.split(",") if m.strip()]
        for org in orgs:
            if once and SeedRecord.objects.filter(kind="eval-starters", name=org.slug).exists():
                self.stdout.write(f"{org.slug}: starter suites were installed before; left as they are.")
                continue
            suites = starter_suites_install(organization=org, models=names or None)
            if once:
                SeedRecord.objects.get_or_create(kind="eval-starters", name=org.slug)
            self.stdout.write(f"{org.slug}: {', '.join(s.name for s in suites)}")
