"""The routing state backend of this process: Redis when REDIS_URL is set, else in-process."""

from __future__ import annotations

from routing.engine.state.base import DEFAULT_BREAKER, HEALTHY, Breaker, Health, RoutingState

__all__ = ["DEFAULT_BREAKER", "HEALTHY", "Breaker", "Health", "RoutingState", "routing_state", "routing_state_set"]

_state: RoutingState | None = None


def routing_state() -> RoutingState:
    global _state
    if _state is None:
        from django.conf import settings

        from routing.conf import routing_conf

        conf = routing_conf()
        if settings.REDIS_URL:
            from routing.engine.state.redis import RedisState

            _state = RedisState(settings.REDIS_URL, prefix=conf.state_prefix, cache_ttl=conf.state_cache_ttl)
        else:
            from routing.engine.state.memory import MemoryState

            _state = MemoryState()
    return _state


def routing_state_set(state: RoutingState | None) -> None:
    """Swap the backend (tests)."""
    global _state
    _state = state
