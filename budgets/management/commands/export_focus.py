"""Write an organization's billed usage for one month as a FOCUS 1.2 CSV."""

from __future__ import annotations

from budgets.finops.focus import focus_csv
from budgets.finops.monthly import MonthlyReportCommand
from budgets.finops.queries import Scope


class Command(MonthlyReportCommand):
    help = "Export billed usage of one organization and month as FOCUS 1.2 CSV (from the hourly rollups)."

    def write(self, out, organization, period):
        return focus_csv(
            out, scope=Scope(organization_id=organization.id), period=period, organization_name=organization.name
        )
