"""Routing settings, read from the environment on first use (never at import time)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from django.conf import settings

from gatehouse.env import env_float, env_str


@dataclass(frozen=True, slots=True)
class RoutingConf:
    max_attempts: int
    retry_backoff: float  # seconds; the n-th retry waits up to backoff * 2**(n-1), jittered
    retry_backoff_max: float
    state_prefix: str
    state_cache_ttl: float  # seconds a Redis read of deployment health is reused in-process
    max_fallbacks: int = 4


@functools.cache
def routing_conf() -> RoutingConf:
    return RoutingConf(
        max_attempts=settings.GATEHOUSE["MAX_ATTEMPTS"],
        retry_backoff=env_float("GATEHOUSE_RETRY_BACKOFF", 0.05),
        retry_backoff_max=env_float("GATEHOUSE_RETRY_BACKOFF_MAX", 2.0),
        state_prefix=env_str("GATEHOUSE_ROUTING_STATE_PREFIX", "gatehouse:routing"),
        state_cache_ttl=env_float("GATEHOUSE_ROUTING_STATE_CACHE_TTL", 0.05),
    )
