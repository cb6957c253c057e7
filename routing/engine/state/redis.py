"""Routing state in Redis, shared by every gateway process and host.

Per deployment: a hash (latency EWMAs, in-flight count, ejection fields, counts)
and two sorted sets, the recent outcomes and the recent failures (the sliding
window of outlier ejection); per route a round-robin counter.
A decision reads the candidates it has no fresh copy of (`cache_ttl`) plus the
round-robin ticket in one pipelined round trip. Outcomes queue locally and one
background flush sends them every few milliseconds as one pipeline, with the
ejection arithmetic done atomically in a Lua script. Each event loop has its own
client (redis.asyncio connections belong to the loop that made them).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Sequence
from typing import Any

import redis
import redis.asyncio as aioredis

from budgets.clock import Clock, SettableClock
from routing.engine.state.base import EWMA_ALPHA, HEALTHY, Breaker, Health

logger = logging.getLogger(__name__)

FIELDS = ("lt", "tt", "if", "ou", "op", "ok", "er", "ej")
KEY_TTL = 86_400
FLUSH_DELAY = 0.005
MAX_WINDOW = 10_000  # outcomes kept per deployment, whatever the window's length

# KEYS: hash, outcomes zset, failures zset, probe lock.
# ARGV: inflight delta, ok (1, 0, -1 none), latency, ttft, now, min requests, window,
#       base ejection, alpha, ttl, error rate, max ejection, max window
END_SCRIPT = """
local h, s, f, p = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now, alpha = tonumber(ARGV[5]), tonumber(ARGV[9])
if ARGV[1] ~= '0' then redis.call('HINCRBY', h, 'if', ARGV[1]) end
local function ewma(field, sample)
  if sample == '' then return end
  local x = tonumber(sample)
  local old = tonumber(redis.call('HGET', h, field))
  if old then x = old + alpha * (x - old) end
  redis.call('HSET', h, field, tostring(x))
end
ewma('lt', ARGV[3])
ewma('tt', ARGV[4])
local ok = ARGV[2]
if ok ~= '-1' then
  local K, W, T = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
  local rate, cap = tonumber(ARGV[11]), tonumber(ARGV[12])
  if ok == '1' then redis.call('HINCRBY', h, 'ok', 1) else redis.call('HINCRBY', h, 'er', 1) end
  local opened = redis.call('HGET', h, 'op') == '1'
  local function eject()
    local n = tonumber(redis.call('HGET', h, 'ej') or '0')
    if not opened and now - tonumber(redis.call('HGET', h, 'rt') or '0') > W then n = 0 end
    n = n + 1
    local t = math.min(T * n, math.max(cap, T))
    redis.call('HSET', h, 'op', '1', 'ou', tostring(now + t), 'ej', n)
    redis.call('DEL', s, f, p)
  end
  if opened then
    if now >= tonumber(redis.call('HGET', h, 'ou') or '0') then
      if ok == '1' then
        redis.call('HSET', h, 'op', '0', 'ou', '0', 'rt', tostring(now))
        redis.call('DEL', s, f, p)
      else
        eject()
      end
    end
  else
    local member = ARGV[5] .. ':' .. redis.call('HINCRBY', h, 'seq', 1)
    redis.call('ZADD', s, now, member)
    redis.call('ZREMRANGEBYSCORE', s, '-inf', now - W)
    if ok == '0' then
      redis.call('ZADD', f, now, member)
      redis.call('ZREMRANGEBYSCORE', f, '-inf', now - W)
      redis.call('EXPIRE', f, math.ceil(W) + 1)
    end
    local total = redis.call('ZCARD', s)
    local most = tonumber(ARGV[13])
    if total > most then
      redis.call('ZREMRANGEBYRANK', s, 0, total - most - 1)
      local oldest = redis.call('ZRANGE', s, 0, 0, 'WITHSCORES')
      redis.call('ZREMRANGEBYSCORE', f, '-inf', '(' .. oldest[2])
      total = most
    end
    redis.call('EXPIRE', s, math.ceil(W) + 1)
    if ok == '0' and total >= K and redis.call('ZCARD', f) >= rate * total then eject() end
  end
end
redis.call('EXPIRE', h, ARGV[10])
return 1
"""


def _float(raw: Any) -> float | None:
    return float(raw) if raw not in (None, b"") else None


def _health(values: Sequence[Any]) -> Health:
    if not any(v is not None for v in values):
        return HEALTHY
    lt, tt, inflight, open_until, opened, ok, err, ejections = values
    return Health(
        latency=_float(lt),
        ttft=_float(tt),
        inflight=max(int(inflight or 0), 0),
        open_until=float(open_until or 0),
        opened=opened == b"1",
        successes=int(ok or 0),
        failures=int(err or 0),
        ejections=int(ejections or 0),
    )


class _LoopLink:
    """The client and queued updates of one event loop."""

    def __init__(self, url: str) -> None:
        self.client = aioredis.from_url(url)
        self.sha: str | None = None
        self.pending: list[tuple[str, tuple[Any, ...]]] = []
        self.flushing: asyncio.Task | None = None


class RedisState:
    name = "redis"

    def __init__(
        self, url: str, *, prefix: str = "gatehouse:routing", cache_ttl: float = 0.05, clock: Clock | None = None
    ) -> None:
        self.url = url
        self.clock = clock or SettableClock()
        self.prefix = prefix
        self.namespace = "default"
        self.cache_ttl = cache_ttl
        self._links: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopLink] = weakref.WeakKeyDictionary()
        self._cache: dict[int, tuple[float, Health]] = {}
        self._sync: redis.Redis | None = None

    # -- keys ------------------------------------------------------------------------

    def configure(self, *, namespace: str) -> None:
        if namespace != self.namespace:
            self.namespace = namespace
            self._cache.clear()

    @property
    def root(self) -> str:
        return f"{self.prefix}:{self.namespace}"

    def _hash(self, deployment_id: int) -> str:
        return f"{self.root}:d:{deployment_id}"

    def now(self) -> float:
        return self.clock.timestamp()

    def _outcomes(self, deployment_id: int) -> str:
        return f"{self.root}:s:{deployment_id}"

    def _failures(self, deployment_id: int) -> str:
        return f"{self.root}:f:{deployment_id}"

    def _probe(self, deployment_id: int) -> str:
        return f"{self.root}:p:{deployment_id}"

    def _link(self) -> _LoopLink:
        loop = asyncio.get_running_loop()
        link = self._links.get(loop)
        if link is None:
            link = self._links[loop] = _LoopLink(self.url)
        return link

    # -- the hot path ----------------------------------------------------------------

    async def read(self, ids: Sequence[int], *, counter: str | None = None) -> tuple[dict[int, Health], int]:
        now = time.monotonic()
        cache = self._cache
        health: dict[int, Health] = {}
        stale: list[int] = []
        for deployment_id in ids:
            cached = cache.get(deployment_id)
            if cached is not None and now - cached[0] < self.cache_ttl:
                health[deployment_id] = cached[1]
            else:
                stale.append(deployment_id)
        if not stale and counter is None:
            return health, 0
        pipe = self._link().client.pipeline(transaction=False)
        for deployment_id in stale:
            pipe.hmget(self._hash(deployment_id), FIELDS)
        if counter is not None:
            pipe.incr(f"{self.root}:rr:{counter}")
        try:
            results = await pipe.execute()
        except redis.RedisError:
            # Routing must not fail with Redis: decide on what is known, assume the rest healthy.
            logger.warning("routing state: Redis read failed; treating deployments as healthy", exc_info=True)
            return {i: health.get(i, HEALTHY) for i in ids}, int(time.monotonic() * 1000)
        for deployment_id, values in zip(stale, results, strict=False):
            found = _health(values)
            cache[deployment_id] = (now, found)
            health[deployment_id] = found
        if len(cache) > 10_000:
            cache.clear()
        return health, int(results[-1]) - 1 if counter is not None else 0

    async def claim_probe(self, deployment_id: int, ttl: float) -> bool:
        key = self._probe(deployment_id)
        try:
            return bool(await self._link().client.set(key, b"1", nx=True, px=max(int(ttl * 1000), 1)))
        except redis.RedisError:
            return False

    def begin(self, deployment_id: int) -> None:
        self._queue("begin", (deployment_id,))

    def end(
        self,
        deployment_id: int,
        *,
        ok: bool | None,
        breaker: Breaker,
        latency: float | None = None,
        ttft: float | None = None,
    ) -> None:
        cached = self._cache.get(deployment_id)
        if ok is False or (ok and cached is not None and cached[1].opened):
            # A failure may eject it, and a successful probe returns it to the pool:
            # either way the copy read before is out of date for the next decision here.
            self._cache.pop(deployment_id, None)
        self._queue("end", (deployment_id, ok, breaker, latency, ttft, self.now()))

    def _queue(self, op: str, args: tuple[Any, ...]) -> None:
        try:
            link = self._link()
        except RuntimeError:  # no running loop (a console action, a script): write now
            self._send_sync([(op, args)])
            return
        link.pending.append((op, args))
        if link.flushing is None or link.flushing.done():
            link.flushing = asyncio.ensure_future(self._flush_soon(link))

    async def _flush_soon(self, link: _LoopLink) -> None:
        await asyncio.sleep(FLUSH_DELAY)
        await self._flush(link)

    async def _flush(self, link: _LoopLink) -> None:
        batch, link.pending = link.pending, []
        if not batch:
            return
        try:
            await self._send(link, batch)
        except redis.exceptions.NoScriptError:
            link.sha = None  # the server lost its script cache (restart, SCRIPT FLUSH): load it again
            try:
                await self._send(link, batch)
            except redis.RedisError:
                logger.warning("routing state: %d updates could not be written to Redis", len(batch), exc_info=True)
        except redis.RedisError:
            logger.warning("routing state: %d updates could not be written to Redis", len(batch), exc_info=True)

    async def _send(self, link: _LoopLink, batch: list[tuple[str, tuple[Any, ...]]]) -> None:
        if link.sha is None:
            link.sha = await link.client.script_load(END_SCRIPT)
        pipe = link.client.pipeline(transaction=False)
        self._fill(pipe, link.sha, batch)
        await pipe.execute()

    def _send_sync(self, batch: list[tuple[str, tuple[Any, ...]]]) -> None:
        client = self._sync_client()
        pipe = client.pipeline(transaction=False)
        self._fill(pipe, client.script_load(END_SCRIPT), batch)
        pipe.execute()

    def _fill(self, pipe: Any, sha: str, batch: list[tuple[str, tuple[Any, ...]]]) -> None:
        for op, args in batch:
            if op == "begin":
                key = self._hash(args[0])
                pipe.hincrby(key, "if", 1)
                pipe.expire(key, KEY_TTL)
                continue
            deployment_id, ok, breaker, latency, ttft, at = args
            pipe.evalsha(
                sha,
                4,
                self._hash(deployment_id),
                self._outcomes(deployment_id),
                self._failures(deployment_id),
                self._probe(deployment_id),
                -1,
                "-1" if ok is None else ("1" if ok else "0"),
                "" if latency is None else repr(latency),
                "" if ttft is None else repr(ttft),
                repr(at),
                breaker.threshold,
                repr(breaker.window),
                repr(breaker.cooldown),
                repr(EWMA_ALPHA),
                KEY_TTL,
                repr(breaker.error_rate),
                repr(breaker.max_ejection),
                MAX_WINDOW,
            )

    async def written(self) -> None:
        link = self._links.get(asyncio.get_running_loop())
        if link is None:
            return
        sending = link.flushing  # a send already under way finishes first
        await self._flush(link)
        if sending is not None and not sending.done():
            await sending

    async def flush(self) -> None:
        loop = asyncio.get_running_loop()
        link = self._links.get(loop)
        if link is not None:
            await self.written()
            await link.client.aclose()
            self._links.pop(loop, None)

    # -- console and tests -------------------------------------------------------------

    def _sync_client(self) -> redis.Redis:
        if self._sync is None:
            self._sync = redis.Redis.from_url(self.url)
        return self._sync

    def inspect(self, ids: Sequence[int]) -> dict[int, Health]:
        if not ids:
            return {}
        pipe = self._sync_client().pipeline(transaction=False)
        for deployment_id in ids:
            pipe.hmget(self._hash(deployment_id), FIELDS)
        return {i: _health(values) for i, values in zip(ids, pipe.execute(), strict=True)}

    def reset(self, ids: Sequence[int] | None = None) -> None:
        client = self._sync_client()
        self._cache.clear()
        if ids is not None:
            keys = [key for i in ids for key in (self._hash(i), self._outcomes(i), self._failures(i), self._probe(i))]
            if keys:
                client.delete(*keys)
            return
        batch = list(client.scan_iter(match=f"{self.root}:*", count=500))
        for start in range(0, len(batch), 500):
            client.delete(*batch[start : start + 500])
