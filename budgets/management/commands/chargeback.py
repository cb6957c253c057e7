"""Monthly chargeback statement per team (CSV): what each team spent on which model."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError

from budgets.finops.focus import BillingPeriod
from budgets.finops.reports import chargeback_csv
from console.models import Organization


class Command(BaseCommand):
    help = "Write the chargeback statement of one organization and month (UTC) as CSV."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--org", required=True, help="organization slug")
        parser.add_argument("--period", required=True, help="month, YYYY-MM")
        parser.add_argument("--out", help="file (default: standard output)")

    def handle(self, *args, **options) -> None:
        organization = Organization.objects.filter(slug=options["org"]).first()
        if organization is None:
            raise CommandError(f"Unknown organization {options['org']!r}.")
        try:
            period = BillingPeriod.month(options["period"])
        except ValueError as error:
            raise CommandError(str(error)) from error
        kwargs = {"organization_id": organization.id, "start": period.start, "end": period.end}
        if options["out"]:
            with open(options["out"], "w", newline="", encoding="utf-8") as out:
                chargeback_csv(out, **kwargs)
        else:
            chargeback_csv(sys.stdout, **kwargs)
