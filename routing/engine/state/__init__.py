"""The routing state backend of this process: Redis when REDIS_URL is set, else in-process.

`routing_state_build` makes a backend from explicit arguments; the gateway (the
composition root) owns one, and pages or commands outside a gateway build their
own with `routing_state_from_settings` — Redis state is shared that way, the
in-process one belongs to the process's gateway alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from budgets.clock import Clock
from routing.engine.state.base import DEFAULT_BREAKER, HEALTHY, Breaker, Health, RoutingState

__all__ = [
    "DEFAULT_BREAKER",
    "HEALTHY",
    "Breaker",
    "Health",
    "RoutingState",
    "routing_state_build",
    "routing_state_from_settings",
]


def routing_state_build(
    *, clock: Clock, redis_url: str = "", prefix: str = "gatehouse:routing", cache_ttl: float = 0.05
) -> RoutingState:
    """A routing state backend: shared through Redis when `redis_url` is given, else in-process."""
    if redis_url:
        from routing.engine.state.redis import RedisState

        return RedisState(redis_url, prefix=prefix, cache_ttl=cache_ttl, clock=clock)
    from routing.engine.state.memory import MemoryState

    return MemoryState(clock=clock)


def routing_state_from_settings(values: Mapping[str, Any], *, redis_url: str, clock: Clock) -> RoutingState:
    """The backend `settings.GATEHOUSE` (and REDIS_URL) describe."""
    from routing.conf import conf_from

    conf = conf_from(values)
    return routing_state_build(
        clock=clock, redis_url=redis_url, prefix=conf.state_prefix, cache_ttl=conf.state_cache_ttl
    )
