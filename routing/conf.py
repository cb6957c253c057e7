"""Routing settings, taken from `settings.GATEHOUSE` on first use (never at import time).

The environment is read in `gatehouse/settings.py` only; this is the typed view
of the routing part of `settings.GATEHOUSE`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings


@dataclass(frozen=True, slots=True)
class RoutingConf:
    max_attempts: int  # attempts within one route
    retry_backoff: float  # seconds; the n-th retry waits up to backoff * 2**(n-1), jittered
    retry_backoff_max: float
    state_prefix: str
    state_cache_ttl: float  # seconds a Redis read of deployment health is reused in-process
    max_fallbacks: int = 4
    request_deadline: float = 300.0  # seconds for the whole request: every attempt and fallback
    max_attempts_total: int = 6  # attempts across the route and its fallbacks
    ttft_timeout: float = 60.0  # seconds a stream may take to send its first chunk
    stream_idle_timeout: float = 60.0  # seconds a started stream may go without a chunk
    ejection_error_rate: float = 0.5
    ejection_min_requests: int = 5
    ejection_max_percent: int = 50
    ejection_max_seconds: float = 300.0


def conf_from(values: Mapping[str, Any]) -> RoutingConf:
    """A RoutingConf from a GATEHOUSE-shaped mapping (missing keys take the defaults)."""
    return RoutingConf(
        max_attempts=values.get("MAX_ATTEMPTS", 3),
        retry_backoff=values.get("RETRY_BACKOFF", 0.05),
        retry_backoff_max=values.get("RETRY_BACKOFF_MAX", 2.0),
        state_prefix=values.get("ROUTING_STATE_PREFIX", "gatehouse:routing"),
        state_cache_ttl=values.get("ROUTING_STATE_CACHE_TTL", 0.05),
        request_deadline=values.get("REQUEST_DEADLINE", 300.0),
        max_attempts_total=values.get("MAX_ATTEMPTS_TOTAL", 6),
        ttft_timeout=values.get("TTFT_TIMEOUT", 60.0),
        stream_idle_timeout=values.get("STREAM_IDLE_TIMEOUT", 60.0),
        ejection_error_rate=values.get("EJECTION_ERROR_RATE", 0.5),
        ejection_min_requests=values.get("EJECTION_MIN_REQUESTS", 5),
        ejection_max_percent=values.get("EJECTION_MAX_PERCENT", 50),
        ejection_max_seconds=values.get("EJECTION_MAX_SECONDS", 300.0),
    )


@functools.cache
def routing_conf() -> RoutingConf:
    return conf_from(settings.GATEHOUSE)
