"""Budget settings, from `settings.GATEHOUSE_BUDGETS` (filled in gatehouse/settings.py).

| key | variable | default | meaning |
|---|---|---|---|
| `HOLD_TTL` | `GATEHOUSE_BUDGET_HOLD_TTL` | `900` | seconds a hold lives without being settled or renewed |
| `TICK` | `GATEHOUSE_BUDGET_TICK` | `0.25` | seconds between ledger writes, renewals, mirroring and alerts |
| `REAP_INTERVAL` | `GATEHOUSE_BUDGET_REAP_INTERVAL` | `5` | seconds between sweeps for expired holds |
| `REDIS_URL` | `REDIS_URL` | empty | Redis holds the live counters when set |
| `REDIS_PREFIX` | `GATEHOUSE_REDIS_PREFIX` | `gh:` (`gh-test:<pid>:` under pytest) | prefix of every budget key |
| `WEBHOOK_TIMEOUT` | `GATEHOUSE_ALERT_WEBHOOK_TIMEOUT` | `5` | seconds a webhook delivery may take |
| `GROUP_COMMIT_MAX` | `GATEHOUSE_BUDGET_GROUP_COMMIT_MAX` | `1` | most admissions in one SQLite transaction |
| `RESTORE_WAIT` | `GATEHOUSE_BUDGET_RESTORE_WAIT` | `2` | seconds to wait for another restorer |
| `LEASE_MULTIPLE` | `GATEHOUSE_BUDGET_LEASE_MULTIPLE` | `32` | a lease is this many worst cases (0: no leases) |
| `LEASE_HEADROOM` | `GATEHOUSE_BUDGET_LEASE_HEADROOM` | `16` | leases only while every budget has room for this many |
| `LEASE_AGE` | `GATEHOUSE_BUDGET_LEASE_AGE` | `1` | seconds a lease admits before it is settled |

Keys may be given in upper or lower case (tests override single keys).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from django.conf import settings


@dataclass(frozen=True, slots=True)
class BudgetSettings:
    hold_ttl: float = 900.0
    tick: float = 0.25
    reap_interval: float = 5.0
    redis_url: str = ""
    redis_prefix: str = "gh:"
    webhook_timeout: float = 5.0
    group_commit_max: int = 1
    restore_wait: float = 2.0
    lease_multiple: int = 32
    lease_headroom: int = 16
    lease_age: float = 1.0


def budget_settings() -> BudgetSettings:
    """The settings as the project's settings object has them now (cheap: read when an owner is built)."""
    configured = getattr(settings, "GATEHOUSE_BUDGETS", None) or {}
    known = {f.name for f in fields(BudgetSettings)}
    values: dict = {"redis_url": getattr(settings, "REDIS_URL", "") or ""}
    for name, value in configured.items():
        key = name.lower()
        if key in known:
            values[key] = value
    values["redis_url"] = values["redis_url"] or ""
    return BudgetSettings(**values)
