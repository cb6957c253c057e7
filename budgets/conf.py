"""Budget settings: `settings.GATEHOUSE_BUDGETS` when the project defines it, else the environment.

| variable | default | meaning |
|---|---|---|
| `GATEHOUSE_BUDGET_HOLD_TTL` | `900` | seconds a hold lives without being settled before it is released |
| `GATEHOUSE_BUDGET_TICK` | `0.25` | seconds between ledger writes, counter mirroring and alert delivery |
| `GATEHOUSE_BUDGET_REAP_INTERVAL` | `5` | seconds between sweeps for expired holds |
| `GATEHOUSE_REDIS_PREFIX` | `gh:` (`gh-test:<pid>:` under pytest) | prefix of every budget and rate-limit key |
| `GATEHOUSE_ALERT_WEBHOOK_TIMEOUT` | `5` | seconds a webhook delivery may take |
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from django.conf import settings

from gatehouse.env import env_float, env_str


@dataclass(frozen=True, slots=True)
class BudgetSettings:
    hold_ttl: float
    tick: float
    reap_interval: float
    redis_url: str
    redis_prefix: str
    webhook_timeout: float


_cached: tuple[tuple, BudgetSettings] | None = None


def budget_settings() -> BudgetSettings:
    """Read once; read again when the project's settings object changes (tests override it)."""
    global _cached
    overrides = getattr(settings, "GATEHOUSE_BUDGETS", None) or {}
    key = (tuple(sorted(overrides.items())), settings.REDIS_URL)
    if _cached is not None and _cached[0] == key:
        return _cached[1]
    testing = getattr(settings, "GATEHOUSE_ENV", "") == "test"
    values = {
        "hold_ttl": env_float("GATEHOUSE_BUDGET_HOLD_TTL", 900.0),
        "tick": env_float("GATEHOUSE_BUDGET_TICK", 0.25),
        "reap_interval": env_float("GATEHOUSE_BUDGET_REAP_INTERVAL", 5.0),
        "redis_url": settings.REDIS_URL or "",
        "redis_prefix": env_str("GATEHOUSE_REDIS_PREFIX", f"gh-test:{os.getpid()}:" if testing else "gh:"),
        "webhook_timeout": env_float("GATEHOUSE_ALERT_WEBHOOK_TIMEOUT", 5.0),
    }
    values.update({name.lower(): value for name, value in overrides.items()})
    found = BudgetSettings(**values)
    _cached = (key, found)
    return found


def budget_settings_reset() -> None:
    """Forget cached settings (tests that change the environment)."""
    global _cached
    _cached = None
