"""Pieces the FinOps pages share: navigation, top movers, budget burn, anomalies, integrity."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from budgets.finops import queries as q
from budgets.finops.forecast import run_out_date
from budgets.finops.params import PERIODS, PageInput
from budgets.finops.tables import Column, Table
from budgets.models import SpendAnomaly

PERIOD_CHOICES = PERIODS
NAV = [
    ("budgets:finops-overview", "Overview"),
    ("budgets:finops-explorer", "Spend explorer"),
    ("budgets:finops-unit", "Unit economics"),
    ("budgets:finops-performance", "Performance"),
    ("budgets:finops-outcomes", "Outcomes & CPSI"),
    ("budgets:finops-savings", "Routing savings"),
    ("budgets:finops-onprem", "On-prem break-even"),
]


def top_movers(page: PageInput, today: date) -> Table:
    """Models, teams and workflows whose spend changed most: the last 7 days against the 7 before."""
    zone = page.zone
    tomorrow = q.day_start(today + timedelta(days=1), zone)
    recent = q.Window(q.day_start(today - timedelta(days=6), zone), tomorrow, zone, "")
    prior = q.Window(q.day_start(today - timedelta(days=13), zone), recent.start, zone, "")
    rows = []
    for dimension in ("model", "team", "workflow"):
        now_rows = {
            r["group"]: r["cost"] for r in q.Slice(page.scope, recent, page.filters).grouped(dimension, counts=False)
        }
        then_rows = {
            r["group"]: r["cost"] for r in q.Slice(page.scope, prior, page.filters).grouped(dimension, counts=False)
        }
        names = q.labels_for(dimension, page.scope.organization_id, list(now_rows) + list(then_rows))
        for value in set(now_rows) | set(then_rows):
            now, then = now_rows.get(value, q.ZERO), then_rows.get(value, q.ZERO)
            rows.append(
                {
                    "dimension": q.DIMENSIONS[dimension].label,
                    "label": q.label(dimension, value, names),
                    "now": now,
                    "then": then,
                    "change": now - then,
                    "change_pct": q.share(now - then, then),
                }
            )
    rows.sort(key=lambda r: -abs(r["change"]))
    return Table(
        "movers",
        "Top movers (last 7 days vs the 7 before)",
        [
            Column("dimension", "By"),
            Column("label", "Value"),
            Column("then", "Prior 7 days", "money"),
            Column("now", "Last 7 days", "money"),
            Column("change", "Change", "money"),
            Column("change_pct", "Change %", "percent"),
        ],
        rows[:10],
    )


def budget_burn(page: PageInput, today: date) -> Table:
    """Each active budget: spent, left, and the day it runs out at its burn so far this period."""
    from budgets.selectors import budget_list, budget_statuses

    budgets = list(budget_list(organization_id=page.scope.organization_id))
    statuses = budget_statuses(budgets=budgets)
    rows = []
    for budget in budgets:
        status = statuses[budget.id]
        elapsed = max((page.now - status.period_start).total_seconds() / 86400, 1 / 24)
        rate = (status.spent / Decimal(str(elapsed))).quantize(Decimal("0.0000000001"))
        runs_out = run_out_date(amount=budget.amount, spent=status.spent + status.held, daily_rate=rate, today=today)
        ends = status.period_end.astimezone(page.zone).date() if status.period_end else None
        rows.append(
            {
                "name": budget.name,
                "scope": f"{budget.get_scope_display()} {budget.scope_id}",
                "period": budget.get_period_display(),
                "amount": budget.amount,
                "spent": status.spent,
                "used": q.share(status.spent, budget.amount),
                "rate": rate,
                "runs_out": runs_out if runs_out and (ends is None or runs_out < ends) else None,
                "resets": ends,
            }
        )
    rows.sort(key=lambda r: (r["runs_out"] is None, r["runs_out"] or today))
    return Table(
        "burn",
        "Budget burn",
        [
            Column("name", "Budget"),
            Column("scope", "Scope"),
            Column("period", "Period"),
            Column("amount", "Amount", "money"),
            Column("spent", "Spent", "money"),
            Column("used", "Used", "percent"),
            Column("rate", "Burn / day", "money"),
            Column("runs_out", "Runs out", "date"),
            Column("resets", "Period ends", "date"),
        ],
        rows,
        note="Runs out: the day spend plus holds reach the amount at this period's average daily burn "
        "(empty: not before the period ends).",
        empty="No budgets yet: set them on the Budgets page.",
    )


def recent_anomalies(page: PageInput) -> Table:
    """The last 14 days' anomalies; a member (own keys only) sees those of their keys."""
    from budgets.finops.anomalies import anomaly_labels

    found = SpendAnomaly.objects.filter(
        organization_id=page.scope.organization_id, hour__gte=page.now - timedelta(days=14)
    )
    if page.scope.key_ids is not None:
        found = found.filter(dimension="key", value__in=[str(k) for k in page.scope.key_ids])
    anomalies = list(found[:10])
    labels = anomaly_labels(page.scope.organization_id, anomalies)
    rows = [
        {
            "hour": anomaly.hour.astimezone(page.zone).strftime("%Y-%m-%d %H:00"),
            "scope": labels[anomaly.id],
            "spend": anomaly.spend,
            "baseline": anomaly.baseline,
        }
        for anomaly in anomalies
    ]
    return Table(
        "anomalies",
        "Spend anomalies (last 14 days)",
        [
            Column("hour", "Hour"),
            Column("scope", "Where"),
            Column("spend", "Spend in the hour", "money"),
            Column("baseline", "Trailing baseline", "money"),
        ],
        rows,
        empty="No spend anomalies in the last 14 days.",
    )


def integrity_tile(organization_id: int) -> Any:
    """The ledger's integrity summary when the audit ledger exists in this build, else None."""
    try:
        from audit import facade as audit_facade  # type: ignore[attr-defined]
    except ImportError:
        return None
    summary = getattr(audit_facade, "integrity_summary", None)
    return summary(organization_id=organization_id) if callable(summary) else None
