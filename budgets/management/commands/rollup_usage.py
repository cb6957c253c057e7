"""Build the hourly usage rollups now (the schedule does the same every minute)."""

from __future__ import annotations

from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_date, parse_datetime

from budgets.rollups import rollup_check, usage_rollup, usage_rollup_rebuild


def _moment(text: str) -> datetime:
    value = parse_datetime(text)
    if value is None:
        day = parse_date(text)
        if day is None:
            raise CommandError(f"Not a date or time: {text!r} (use ISO 8601).")
        value = datetime(day.year, day.month, day.day)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class Command(BaseCommand):
    help = "Bring the hourly usage rollups up to date; --rebuild recomputes a range (default: all history)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--rebuild", action="store_true", help="recompute every hour, not only new records")
        parser.add_argument("--since", help="with --rebuild: first hour (ISO 8601 date or time)")
        parser.add_argument("--until", help="with --rebuild: end (exclusive)")
        parser.add_argument("--check", action="store_true", help="compare every column with the raw records")

    def handle(self, *args, **options) -> None:
        if options["rebuild"]:
            since = _moment(options["since"]) if options["since"] else None
            until = _moment(options["until"]) if options["until"] else None
            if since and until and since >= until:
                raise CommandError("--until must lie after --since.")
            result = usage_rollup_rebuild(since=since, until=until)
        else:
            if options["since"] or options["until"]:
                raise CommandError("--since and --until go with --rebuild.")
            result = usage_rollup()
        self.stdout.write(f"rolled up {result['hours']} hour(s) into {result['rows']} row(s)")
        if options["check"]:
            drift = rollup_check()
            for line in drift:
                self.stdout.write(f"DRIFT {line}")
            if drift:
                raise CommandError(f"{len(drift)} column(s) differ from the raw records.")
            self.stdout.write("rollups equal the raw records in every column")
