"""What the monthly report commands share: one organization, one month, a CSV written
to a file or standard output."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import IO, Any

from django.core.management.base import BaseCommand, CommandError

from budgets.finops.focus import BillingPeriod
from console.models import Organization


class MonthlyReportCommand(BaseCommand):
    """`--org SLUG --period YYYY-MM [--out FILE]`; subclasses implement `write(out, organization, period)`."""

    def add_arguments(self, parser) -> None:
        parser.add_argument("--org", required=True, help="organization slug")
        parser.add_argument("--period", required=True, help="billing month, YYYY-MM (UTC)")
        parser.add_argument("--out", help="file to write (default: standard output)")

    def write(self, out: IO[str], organization: Organization, period: BillingPeriod) -> Any:
        raise NotImplementedError

    def handle(self, *args, **options) -> None:
        organization = Organization.objects.filter(slug=options["org"]).first()
        if organization is None:
            raise CommandError(f"Unknown organization {options['org']!r}.")
        try:
            period = BillingPeriod.month(options["period"])
        except ValueError as error:
            raise CommandError(str(error)) from error
        report: Callable[[IO[str]], Any] = lambda out: self.write(out, organization, period)  # noqa: E731
        if options["out"]:
            with open(options["out"], "w", newline="", encoding="utf-8") as out:
                written = report(out)
            if written is not None:
                self.stderr.write(f"wrote {written} row(s) to {options['out']}")
        else:
            report(sys.stdout)
