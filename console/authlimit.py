"""Failed-authentication limits per client address.

Each address has a token bucket of `limit` failures that refills over `window`
seconds. A request whose address has no token left is refused (429 with
Retry-After) before its key is looked up, so random keys cannot queue database
work without bound. The memory limiter counts per process; `RedisAuthLimiter`
shares the buckets between every process and host (and falls back to memory
while Redis is unreachable, so the gateway keeps serving).
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import redis
import redis.asyncio as aioredis

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AuthLimitSettings:
    limit: int = 30  # failures per window and address
    window: float = 60.0  # seconds
    max_clients: int = 100_000

    @classmethod
    def from_settings(cls) -> AuthLimitSettings:
        from django.conf import settings

        conf = settings.GATEHOUSE
        return cls(limit=conf["AUTH_FAILURE_LIMIT"], window=conf["AUTH_FAILURE_WINDOW"])

    @property
    def rate(self) -> float:
        return self.limit / self.window


class AuthLimiter(Protocol):
    async def take(self, client: str) -> float:
        """Reserve one failure for `client` before its key is looked up: 0 when reserved,
        otherwise the seconds until one is free (nothing reserved). Reserving first
        bounds a burst of concurrent requests too, not only sequential ones."""

    async def give_back(self, client: str) -> None:
        """Return the reservation: the key was good."""

    async def reset(self, client: str) -> None:
        """Forget `client`'s failures (an operator unblocking an address)."""


class MemoryAuthLimiter:
    """Token buckets in this process's memory; thread-safe."""

    def __init__(self, config: AuthLimitSettings | None = None, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config or AuthLimitSettings()
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, at)

    def _tokens(self, client: str, now: float) -> float:
        tokens, at = self._buckets.get(client, (float(self.config.limit), now))
        return min(float(self.config.limit), tokens + max(0.0, now - at) * self.config.rate)

    def consume(self, client: str, cost: float) -> float:
        """Take `cost` tokens (a negative cost returns them) if at least one is there; the tokens left."""
        now = self._clock()
        with self._lock:
            tokens = self._tokens(client, now)
            if cost <= 0 or tokens >= 1:
                tokens = min(float(self.config.limit), tokens - cost)
                self._buckets[client] = (tokens, now)
                if len(self._buckets) > self.config.max_clients:
                    self._evict(now)
                return tokens + cost
            return tokens

    def _evict(self, now: float) -> None:
        full = [c for c in self._buckets if self._tokens(c, now) >= self.config.limit]
        for client in full:
            del self._buckets[client]
        if len(self._buckets) > self.config.max_clients:
            # More distinct failing addresses than we keep: start over rather than grow.
            self._buckets.clear()

    def wait_for(self, tokens: float) -> float:
        return 0.0 if tokens >= 1 else (1 - tokens) / self.config.rate

    async def take(self, client: str) -> float:
        return self.wait_for(self.consume(client, 1))

    async def give_back(self, client: str) -> None:
        self.consume(client, -1)

    async def reset(self, client: str) -> None:
        with self._lock:
            self._buckets.pop(client, None)


# KEYS: bucket hash. ARGV: limit, rate per second, now, cost, ttl.
# Takes `cost` tokens when at least one is there (a negative cost gives back); returns
# the tokens there were before.
BUCKET_SCRIPT = """
local limit, rate, now, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local v = redis.call('HMGET', KEYS[1], 't', 'at')
local tokens = tonumber(v[1]) or limit
local at = tonumber(v[2]) or now
local elapsed = now - at
if elapsed < 0 then elapsed = 0 end
tokens = math.min(limit, tokens + elapsed * rate)
if cost <= 0 or tokens >= 1 then
  redis.call('HSET', KEYS[1], 't', tostring(math.min(limit, tokens - cost)), 'at', tostring(now))
  redis.call('EXPIRE', KEYS[1], ARGV[5])
end
return tostring(tokens)
"""


class RedisAuthLimiter:
    """Token buckets in Redis, shared by every gateway process; one client per event loop."""

    def __init__(
        self,
        url: str,
        config: AuthLimitSettings | None = None,
        *,
        prefix: str = "gatehouse:authfail",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self.config = config or AuthLimitSettings()
        self.prefix = prefix
        self._clock = clock
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = (
            weakref.WeakKeyDictionary()
        )
        self.fallback = MemoryAuthLimiter(self.config, clock=clock)
        self._failing = False

    def _client(self) -> aioredis.Redis:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = self._clients[loop] = aioredis.from_url(self.url, socket_timeout=0.5, socket_connect_timeout=0.5)
        return client

    async def _consume(self, client: str, cost: int) -> float:
        ttl = math.ceil(self.config.window) + 1
        try:
            key = f"{self.prefix}:{client}"
            limit, rate = self.config.limit, self.config.rate
            raw = await self._client().eval(BUCKET_SCRIPT, 1, key, limit, rate, self._clock(), cost, ttl)
        except (redis.RedisError, OSError):
            if not self._failing:
                logger.warning("failed-auth limiter cannot reach Redis; counting in this process", exc_info=True)
                self._failing = True
            return self.fallback.consume(client, cost)
        if self._failing:
            logger.info("failed-auth limiter reached Redis again")
            self._failing = False
        return float(raw)

    async def take(self, client: str) -> float:
        return self.fallback.wait_for(await self._consume(client, 1))

    async def give_back(self, client: str) -> None:
        await self._consume(client, -1)

    async def reset(self, client: str) -> None:
        await self.fallback.reset(client)
        try:
            await self._client().delete(f"{self.prefix}:{client}")
        except (redis.RedisError, OSError):
            logger.warning("failed-auth limiter cannot reach Redis to reset %s", client)

    async def aclose(self) -> None:
        """Close the client of the running loop (call from each loop before it ends)."""
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()


def auth_limiter_build(*, redis_url: str, clock: Callable[[], float] = time.time) -> AuthLimiter:
    """The limiter the composition root owns: shared in Redis when configured."""
    config = AuthLimitSettings.from_settings()
    if redis_url:
        return RedisAuthLimiter(redis_url, config, clock=clock)
    return MemoryAuthLimiter(config, clock=clock)
