"""Monthly chargeback statement per team (CSV): what each team spent on which model."""

from __future__ import annotations

from budgets.finops.monthly import MonthlyReportCommand
from budgets.finops.reports import chargeback_csv


class Command(MonthlyReportCommand):
    help = "Write the chargeback statement of one organization and month (UTC) as CSV."

    def write(self, out, organization, period):
        chargeback_csv(out, organization_id=organization.id, start=period.start, end=period.end)
