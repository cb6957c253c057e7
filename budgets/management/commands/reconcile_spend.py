"""Compare budget counters, the hold ledger, usage records and rollups; print any drift."""

from __future__ import annotations

from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_date, parse_datetime

from budgets.reconcile import money_text, reconcile
from console.models import Organization


class Command(BaseCommand):
    help = "Compare budget counters with the hold ledger, usage records and hourly rollups; print any drift."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--org", help="organization slug (default: all)")
        parser.add_argument("--budget", type=int, help="one budget id")
        parser.add_argument(
            "--period",
            default="current",
            choices=["current", "previous", "all"],
            help="the periods to check: current (default), previous, or all with a counter",
        )
        parser.add_argument("--at", help="a date or time (ISO 8601) that picks the current/previous period")
        parser.add_argument(
            "--check", action="store_true", help="exit with status 1 on drift or a hard budget over its limit"
        )
        parser.add_argument(
            "--no-rollup",
            action="store_true",
            help="compare with the hourly rollups as they are (default: bring them up to date first)",
        )

    def handle(self, *args, **options) -> None:
        organization_id = None
        if options["org"]:
            organization = Organization.objects.filter(slug=options["org"]).first()
            if organization is None:
                raise CommandError(f"Unknown organization {options['org']!r}.")
            organization_id = organization.id
        at = None
        if options["at"]:
            at = parse_datetime(options["at"])
            if at is None and parse_date(options["at"]) is not None:
                at = datetime.fromisoformat(options["at"] + "T12:00:00+00:00")
            if at is None:
                raise CommandError(f"--at: {options['at']!r} is not an ISO 8601 date or time.")
        checks = reconcile(
            organization_id=organization_id,
            budget_id=options["budget"],
            at=at,
            period=options["period"],
            rollup=not options["no_rollup"],
        )
        header = ("budget", "period start", "counter", "ledger", "records", "scope records", "rollups", "held")
        self.stdout.write("  ".join(f"{h:>16}" if i > 1 else f"{h:<28}" for i, h in enumerate(header)))
        drifted = over = 0
        for check in checks:
            cells = (
                f"{check.budget.name[:28]:<28}",
                f"{check.period_start:%Y-%m-%d %H:%M}Z".ljust(28),
                *(
                    f"{money_text(v):>16}"
                    for v in (
                        check.counter_spent,
                        check.ledger_actual,
                        check.records,
                        check.scope_records,
                        check.rollups,
                        check.counter_held,
                    )
                ),
            )
            self.stdout.write("  ".join(cells))
            if check.unbudgeted:
                self.stdout.write(f"    note: {money_text(check.unbudgeted)} spent before the budget existed")
            for problem in check.drift:
                drifted += 1
                self.stdout.write(self.style.ERROR(f"    DRIFT: {problem}"))
            if check.over_limit:
                over += 1
                self.stdout.write(
                    self.style.ERROR(
                        f"    OVER LIMIT: hard budget spent {money_text(check.counter_spent)} of "
                        f"{money_text(check.budget.amount_units)} ({money_text(check.over_limit)} over)"
                    )
                )
        if drifted:
            self.stdout.write(self.style.ERROR(f"{drifted} drift finding(s) in {len(checks)} counter(s)."))
        else:
            self.stdout.write(self.style.SUCCESS(f"No drift in {len(checks)} counter(s)."))
        if over:
            self.stdout.write(self.style.ERROR(f"{over} hard budget(s) over their limit."))
        if (drifted or over) and options["check"]:
            raise SystemExit(1)
