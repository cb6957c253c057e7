"""What is enforced and what is reported, side by side: counters, the hold ledger,
usage records and hourly rollups for any period.

For each budget counter (one budget, one period) the chain must hold exactly, in
units of 1e-10 USD:

  counter spent  == sum of the actual cost of the ledger's holds on it
  counter held   == sum of the amounts of its holds still open
  ledger actual  == sum of the usage records of those requests
  usage records in the scope and period == hourly rollups of the same (org, team
                    and key scopes, periods on whole UTC hours; users are not rolled up)

and records of the scope created while the budget existed must all have passed
through it. Anything else is drift, printed by `manage.py reconcile_spend`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Q

from budgets.clock import SYSTEM_CLOCK
from budgets.conf import budget_settings
from budgets.models import (
    Budget,
    BudgetCounter,
    BudgetHold,
    HoldStatus,
    Scope,
    UsageHourly,
    UsageRecord,
    counter_ident,
    units_to_usd,
    usd_to_units,
)
from budgets.periods import period_bounds, previous_period, zone_of

SNAPSHOT_LAG = timedelta(seconds=5)  # a new budget reaches every gateway process within a poll or two


@dataclass
class CounterCheck:
    budget: Budget
    period_start: datetime
    period_end: datetime | None
    counter_spent: int = 0
    counter_held: int = 0
    ledger_actual: int = 0
    ledger_open: int = 0
    ledger_requests: int = 0
    records: int = 0  # the records of the ledger's requests
    scope_records: int = 0  # every record of the scope in the period
    rollups: int | None = None
    unbudgeted: int = 0  # records of the scope from before the budget existed
    drift: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.drift

    @property
    def over_limit(self) -> int:
        """How far a hard budget's spend is past its limit (0 when within): a request cost more than
        its worst case, or was served without a hold while the store was down (fail open)."""
        if not self.budget.hard:
            return 0
        return max(0, self.counter_spent - self.budget.amount_units)


def _scope_filter(budget: Budget) -> Q:
    query = Q(organization_id=budget.organization_id)
    if budget.scope == Scope.TEAM:
        query &= Q(team_id=budget.scope_id)
    elif budget.scope == Scope.USER:
        query &= Q(user_id=budget.scope_id)
    elif budget.scope == Scope.KEY:
        query &= Q(key_id=budget.scope_id)
    return query


def _window(query: Q, start: datetime, end: datetime | None, field_name: str = "created_at") -> Q:
    query &= Q(**{f"{field_name}__gte": start})
    if end is not None:
        query &= Q(**{f"{field_name}__lt": end})
    return query


def _units(values) -> int:
    return sum(usd_to_units(value) for value in values if value is not None)


def _on_the_hour(moment: datetime | None) -> bool:
    return moment is None or (moment.minute == 0 and moment.second == 0 and moment.microsecond == 0)


def _live_counters(idents: list[str]) -> dict[str, tuple[int, int]]:
    """Counter values from Redis when it holds the live counters (else the rows are the counters)."""
    conf = budget_settings()
    if not conf.redis_url or not idents:
        return {}
    import redis

    client = redis.Redis.from_url(conf.redis_url, decode_responses=True)
    try:
        pipe = client.pipeline(transaction=False)
        for ident in idents:
            pipe.hmget(f"{conf.redis_prefix}c:{ident}", "spent", "held")
        replies = pipe.execute()
    finally:
        client.close()
    return {
        ident: (int(spent or 0), int(held or 0))
        for ident, (spent, held) in zip(idents, replies, strict=True)
        if spent is not None or held is not None
    }


def counter_check(budget: Budget, start: datetime, end: datetime | None, *, spent: int, held: int) -> CounterCheck:
    check = CounterCheck(budget=budget, period_start=start, period_end=end, counter_spent=spent, counter_held=held)
    ident = counter_ident(budget.id, start)
    holds = BudgetHold.objects.filter(_window(Q(organization_id=budget.organization_id), start, end)).values_list(
        "request_id", "counters", "status", "amount_units", "actual_units", "members"
    )
    request_ids = []
    for request_id, counters, status, amount, actual, members in holds.iterator():
        if ident not in counters:
            continue
        # A lease's actual cost is its members' (the requests a process admitted within it).
        request_ids.extend(members or [request_id])
        if status == HoldStatus.HELD:
            check.ledger_open += amount
        if actual is not None:
            check.ledger_actual += actual
    check.ledger_requests = len(request_ids)
    costs = {}
    for offset in range(0, len(request_ids), 500):
        chunk = request_ids[offset : offset + 500]
        costs.update(UsageRecord.objects.filter(request_id__in=chunk).values_list("request_id", "cost"))
    check.records = _units(costs.values())
    scope = _window(_scope_filter(budget), start, end)
    since_budget = budget.created_at + SNAPSHOT_LAG
    outside = 0
    for request_id, cost, created_at in (
        UsageRecord.objects.filter(scope).values_list("request_id", "cost", "created_at").iterator()
    ):
        units = usd_to_units(cost)
        check.scope_records += units
        if request_id not in costs and units:
            if created_at < since_budget or (budget.archived_at is not None and created_at >= budget.archived_at):
                check.unbudgeted += units
            else:
                outside += units
    if budget.scope != Scope.USER and _on_the_hour(start) and _on_the_hour(end):
        rolled = _window(_scope_filter(budget), start, end, "hour")
        check.rollups = _units(UsageHourly.objects.filter(rolled).values_list("cost", flat=True))
    money = units_to_usd
    if check.counter_spent != check.ledger_actual:
        check.drift.append(f"counter spent {money(check.counter_spent)} != ledger {money(check.ledger_actual)}")
    if check.counter_held != check.ledger_open:
        check.drift.append(f"counter held {money(check.counter_held)} != open holds {money(check.ledger_open)}")
    if check.ledger_actual != check.records:
        check.drift.append(f"ledger {money(check.ledger_actual)} != usage records {money(check.records)}")
    if outside:
        check.drift.append(f"usage records of {money(outside)} in scope never passed this budget")
    if check.rollups is not None and check.rollups != check.scope_records:
        check.drift.append(f"rollups {money(check.rollups)} != usage records {money(check.scope_records)}")
    return check


def reconcile(
    *,
    organization_id: int | None = None,
    budget_id: int | None = None,
    at: datetime | None = None,
    period: str = "current",
    rollup: bool = False,
) -> list[CounterCheck]:
    """Check every budget counter of the chosen periods: `current`, `previous` (both as of
    `at`, default now) or `all` (every period with a counter).

    `rollup` first brings the hourly rollups up to date (the Celery job may not have run
    since the last records were written; without it their lag reads as drift)."""
    if rollup:
        from budgets.rollups import usage_rollup

        usage_rollup()
    budgets = Budget.objects.select_related("organization").order_by("organization_id", "id")
    if organization_id is not None:
        budgets = budgets.filter(organization_id=organization_id)
    if budget_id is not None:
        budgets = budgets.filter(id=budget_id)
    at = at or SYSTEM_CLOCK.now()
    wanted: list[tuple[Budget, datetime, datetime | None]] = []
    rows = defaultdict(dict)
    for row in BudgetCounter.objects.filter(budget__in=budgets):
        rows[row.budget_id][row.period_start] = row
    for budget in budgets:
        zone = zone_of(budget.organization.time_zone)
        if period == "all":
            for start, row in sorted(rows[budget.id].items()):
                wanted.append((budget, start, row.period_end))
            continue
        start, end = period_bounds(budget.period, at, zone)
        if period == "previous":
            if end is None:
                continue
            start, end = previous_period(budget.period, start, zone)
        if budget.archived_at is not None and start not in rows[budget.id]:
            continue
        wanted.append((budget, start, end))
    live = _live_counters([counter_ident(b.id, s) for b, s, _ in wanted])
    checks = []
    for budget, start, end in wanted:
        row = rows[budget.id].get(start)
        spent, held = live.get(counter_ident(budget.id, start)) or (
            (row.spent_units, row.held_units) if row is not None else (0, 0)
        )
        checks.append(counter_check(budget, start, end, spent=spent, held=held))
    return checks


def money_text(units: int | None) -> str:
    return "n/a" if units is None else f"{units_to_usd(units):.10f}"
