"""Seed synthetic usage (default 1,000,000 records over a year) for demos and the page benchmark."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from budgets.finops.seed import seed_usage


class Command(BaseCommand):
    help = "Create an organization with teams, users and keys, and seed usage records over a span of days."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--org", default="finops-bench", help="organization slug (created when missing)")
        parser.add_argument("--records", type=int, default=1_000_000)
        parser.add_argument("--days", type=int, default=365)
        parser.add_argument("--teams", type=int, default=20)
        parser.add_argument("--users", type=int, default=200)
        parser.add_argument("--keys-per-user", type=int, default=2)
        parser.add_argument("--seed", type=int, default=7, help="random seed (same seed, same data)")
        parser.add_argument(
            "--if-empty", action="store_true", help="do nothing when the organization already has usage records"
        )

    def handle(self, *args, **options) -> None:
        for name in ("records", "days", "teams", "users", "keys_per_user"):
            if options[name] < 1:
                raise CommandError(f"--{name.replace('_', '-')} must be at least 1.")
        if options["if_empty"]:
            from budgets.models import UsageRecord
            from console.models import Organization

            organization = Organization.objects.filter(slug=options["org"]).first()
            if organization is not None and UsageRecord.objects.filter(organization_id=organization.id).exists():
                self.stdout.write(f"organization {options['org']!r} already has usage; nothing seeded")
                return
        started = time.monotonic()
        try:
            result = seed_usage(
                slug=options["org"],
                records=options["records"],
                days=options["days"],
                teams=options["teams"],
                users=options["users"],
                keys_per_user=options["keys_per_user"],
                seed=options["seed"],
            )
        except ValueError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            f"seeded {result.records} records, {result.outcomes} outcomes and {result.rollup_rows} rollup rows "
            f"in organization {options['org']!r} in {time.monotonic() - started:.0f} s"
        )
