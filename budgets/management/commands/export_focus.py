"""Write an organization's billed usage for one month as a FOCUS 1.2 CSV."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError

from budgets.finops.focus import BillingPeriod, focus_csv
from budgets.finops.queries import Scope
from console.models import Organization


class Command(BaseCommand):
    help = "Export billed usage of one organization and month as FOCUS 1.2 CSV (from the hourly rollups)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--org", required=True, help="organization slug")
        parser.add_argument("--period", required=True, help="billing month, YYYY-MM (UTC)")
        parser.add_argument("--out", help="file to write (default: standard output)")

    def handle(self, *args, **options) -> None:
        organization = Organization.objects.filter(slug=options["org"]).first()
        if organization is None:
            raise CommandError(f"Unknown organization {options['org']!r}.")
        try:
            period = BillingPeriod.month(options["period"])
        except ValueError as error:
            raise CommandError(str(error)) from error
        scope = Scope(organization_id=organization.id)
        if options["out"]:
            with open(options["out"], "w", newline="", encoding="utf-8") as out:
                count = focus_csv(out, scope=scope, period=period, organization_name=organization.name)
            self.stderr.write(f"wrote {count} FOCUS row(s) to {options['out']}")
        else:
            focus_csv(sys.stdout, scope=scope, period=period, organization_name=organization.name)
