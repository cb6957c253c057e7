"""Budget counters, holds and rate limits in Redis, shared by every gateway process.

The admission is one Lua script: it checks every hard budget counter and every
rate-limit bucket and, only if all have room, reserves the amount on every counter,
takes from every bucket and records the hold (a hash, plus its expiry in a sorted
set). Redis runs a script atomically, so concurrent requests on any number of
processes can never reserve past a limit.

Keys (under the configured prefix):
  c:<budget id>:<period start>   hash {spent, held} in 1e-10 USD; expires 35 days after its period
  h:<request id>                 hash {amount, keys, payload, expires}: an open hold
  holds                          sorted set of open holds by expiry time
  r:<scope>:<id>:<kind>          hash {level, ts}: a token bucket (ts from Redis's own clock)
  epoch                          written when the counters are restored from the database; an
                                 admission that finds it missing knows Redis lost its counters
  restoring                      a lock: the one process restoring the counters
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from budgets.admission.types import Bucket, CounterRef, Hold, Settlement, SettleResult

RETENTION = 35 * 86400  # seconds a period's counter stays in Redis after the period ends

ADMIT = """
local nb = tonumber(ARGV[5])
local nr = tonumber(ARGV[6])
if nb > 0 and redis.call('EXISTS', KEYS[#KEYS]) == 0 then
  return {0, 'l'}
end
local amount = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local used = {}
local a = 7
for i = 1, nb do
  local v = redis.call('HMGET', KEYS[2 + i], 'spent', 'held')
  local u = (tonumber(v[1]) or 0) + (tonumber(v[2]) or 0)
  used[i] = u
  if ARGV[a + 1] == '1' and u + amount > tonumber(ARGV[a]) then
    return {0, 'b', i, tostring(u)}
  end
  a = a + 3
end
local levels = {}
local b = a
for j = 1, nr do
  local cap = tonumber(ARGV[b])
  local cost = tonumber(ARGV[b + 1])
  local v = redis.call('HMGET', KEYS[2 + nb + j], 'level', 'ts')
  local level = tonumber(v[1])
  if level == nil then
    level = cap
  else
    level = math.min(cap, level + math.max(0, now - tonumber(v[2])) * cap / 60)
  end
  levels[j] = level
  if level < math.min(cost, cap) then
    local out = {0, 'r', j}
    for k = 1, j do out[#out + 1] = tostring(levels[k]) end
    return out
  end
  b = b + 2
end
b = a
for j = 1, nr do
  local key = KEYS[2 + nb + j]
  levels[j] = levels[j] - tonumber(ARGV[b + 1])
  redis.call('HSET', key, 'level', tostring(levels[j]), 'ts', tostring(now))
  redis.call('EXPIRE', key, 600)
  b = b + 2
end
a = 7
local keys = {}
for i = 1, nb do
  redis.call('HINCRBY', KEYS[2 + i], 'held', ARGV[2])
  local exp = tonumber(ARGV[a + 2])
  if exp > 0 then redis.call('EXPIREAT', KEYS[2 + i], exp) end
  keys[i] = KEYS[2 + i]
  a = a + 3
end
if nb > 0 then
  redis.call('HSET', KEYS[1], 'amount', ARGV[2], 'keys', table.concat(keys, ' '), 'payload', ARGV[4],
             'expires', ARGV[3])
  redis.call('EXPIREAT', KEYS[1], math.floor(tonumber(ARGV[3])) + 86400)
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
end
local out = {1}
for j = 1, nr do out[#out + 1] = tostring(levels[j]) end
return out
"""

SETTLE = """
local nb = tonumber(ARGV[3])
local nr = tonumber(ARGV[4])
local owned = 0
if ARGV[5] == '1' then
  local amount = redis.call('HGET', KEYS[1], 'amount')
  if amount then
    owned = 1
    for i = 1, nb do redis.call('HINCRBY', KEYS[2 + i], 'held', '-' .. amount) end
    redis.call('DEL', KEYS[1])
    redis.call('ZREM', KEYS[2], ARGV[1])
  end
end
local out = {owned}
for i = 1, nb do out[#out + 1] = redis.call('HINCRBY', KEYS[2 + i], 'spent', ARGV[2]) end
local delta = tonumber(ARGV[6])
for j = 1, nr do
  local key = KEYS[2 + nb + j]
  local level = tonumber(redis.call('HGET', key, 'level'))
  if level ~= nil then
    redis.call('HSET', key, 'level', tostring(math.min(tonumber(ARGV[6 + j]), level + delta)))
  end
end
return out
"""

RELEASE = """
local amount = redis.call('HGET', KEYS[1], 'amount')
redis.call('ZREM', KEYS[2], ARGV[1])
if not amount then return 0 end
for i = 3, #KEYS do redis.call('HINCRBY', KEYS[i], 'held', '-' .. amount) end
redis.call('DEL', KEYS[1])
return 1
"""

GATE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local n = tonumber(ARGV[1])
local best_wait = -1
for d = 1, n do
  local ok = true
  local levels = {}
  for k = 1, 2 do
    local cap = tonumber(ARGV[1 + (d - 1) * 4 + (k - 1) * 2 + 1])
    local cost = tonumber(ARGV[1 + (d - 1) * 4 + (k - 1) * 2 + 2])
    if cap > 0 then
      local v = redis.call('HMGET', KEYS[(d - 1) * 2 + k], 'level', 'ts')
      local level = tonumber(v[1])
      if level == nil then
        level = cap
      else
        level = math.min(cap, level + math.max(0, now - tonumber(v[2])) * cap / 60)
      end
      levels[k] = level
      local need = math.min(cost, cap)
      if level < need then
        ok = false
        local wait = (need - level) * 60 / cap
        if best_wait < 0 or wait < best_wait then best_wait = wait end
      end
    end
  end
  if ok then
    for k = 1, 2 do
      local cap = tonumber(ARGV[1 + (d - 1) * 4 + (k - 1) * 2 + 1])
      if cap > 0 then
        local cost = tonumber(ARGV[1 + (d - 1) * 4 + (k - 1) * 2 + 2])
        local key = KEYS[(d - 1) * 2 + k]
        redis.call('HSET', key, 'level', tostring(levels[k] - cost), 'ts', tostring(now))
        redis.call('EXPIRE', key, 600)
      end
    end
    return {d, '0'}
  end
end
return {0, tostring(best_wait)}
"""

RAISE = """
local amount = redis.call('HGET', KEYS[1], 'amount')
if not amount then return {0, 'h'} end
if redis.call('EXISTS', KEYS[2]) == 0 then return {0, 'l'} end
local extra = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
for i = 1, n do
  local v = redis.call('HMGET', KEYS[2 + i], 'spent', 'held')
  local u = (tonumber(v[1]) or 0) + (tonumber(v[2]) or 0)
  if ARGV[2 + i * 2] == '1' and u + extra > tonumber(ARGV[1 + i * 2]) then
    return {0, 'b', i, tostring(u)}
  end
end
for i = 1, n do redis.call('HINCRBY', KEYS[2 + i], 'held', ARGV[1]) end
return {1, redis.call('HINCRBY', KEYS[1], 'amount', ARGV[1])}
"""

RENEW = """
local done = 0
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('HSET', KEYS[i], 'expires', ARGV[2 * i])
    redis.call('EXPIREAT', KEYS[i], math.floor(tonumber(ARGV[2 * i])) + 86400)
    redis.call('ZADD', ARGV[1], 'XX', ARGV[2 * i], ARGV[2 * i + 1])
    done = done + 1
  end
end
return done
"""

RESTORE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local data = cjson.decode(ARGV[1])
for _, c in ipairs(data.counters) do
  local current = tonumber(redis.call('HGET', c[1], 'spent') or '0')
  local spent = math.max(current, tonumber(c[2]))
  redis.call('HSET', c[1], 'spent', string.format('%d', spent), 'held', string.format('%d', c[3]))
  if tonumber(c[4]) > 0 then redis.call('EXPIREAT', c[1], c[4]) end
end
for _, h in ipairs(data.holds) do
  redis.call('HSET', h[1], 'amount', string.format('%d', h[3]), 'keys', h[4], 'payload', h[5], 'expires', h[6])
  redis.call('EXPIREAT', h[1], math.floor(tonumber(h[6])) + 86400)
  redis.call('ZADD', KEYS[2], h[6], h[2])
end
redis.call('SET', KEYS[1], ARGV[2])
return 1
"""


class RedisStore:
    """One client and its registered scripts per event loop (redis.asyncio clients are loop-bound)."""

    def __init__(self, url: str, prefix: str) -> None:
        import redis.asyncio as redis_asyncio

        self.client = redis_asyncio.Redis.from_url(
            url, decode_responses=True, health_check_interval=30, socket_connect_timeout=2, socket_timeout=5
        )
        self.prefix = prefix
        self.holds_key = prefix + "holds"
        self.epoch_key = prefix + "epoch"
        self.lock_key = prefix + "restoring"
        self._raise = self.client.register_script(RAISE)
        self._renew = self.client.register_script(RENEW)
        self._restore = self.client.register_script(RESTORE)
        self._admit = self.client.register_script(ADMIT)
        self._settle = self.client.register_script(SETTLE)
        self._release = self.client.register_script(RELEASE)
        self._gate = self.client.register_script(GATE)

    def counter_key(self, ident: str) -> str:
        return f"{self.prefix}c:{ident}"

    def hold_key(self, request_id: str) -> str:
        return f"{self.prefix}h:{request_id}"

    def bucket_key(self, key: str) -> str:
        return f"{self.prefix}r:{key}"

    async def admit(
        self, *, hold: Hold | None, refs: tuple[CounterRef, ...], buckets: list[Bucket], request_id: str
    ) -> tuple[str, int, list[float]]:
        """('ok', 0, levels) | ('budget', index, [used]) | ('rate', index, levels so far) | ('lost', 0, []):
        Redis no longer has the epoch key, so its counters are gone until restored."""
        keys = [self.hold_key(request_id), self.holds_key]
        amount = hold.amount_units if hold is not None else 0
        expires = hold.expires_at.timestamp() if hold is not None else 0
        payload = ""
        if hold is not None:
            payload = f"{hold.organization_id}|{hold.created_at.timestamp():.6f}|" + ",".join(r.ident for r in refs)
        args: list = [request_id, amount, f"{expires:.6f}", payload, len(refs), len(buckets)]
        for ref in refs:
            keys.append(self.counter_key(ref.ident))
            # Never in the past: a key given a past expiry would vanish at once.
            expire_at = int(max(ref.end.timestamp(), time.time())) + RETENTION if ref.end is not None else 0
            args.extend((ref.budget.limit_units, 1 if ref.budget.hard else 0, expire_at))
        for bucket in buckets:
            keys.append(self.bucket_key(bucket.key))
            args.extend((bucket.capacity, bucket.cost))
        keys.append(self.epoch_key)
        reply = await self._admit(keys=keys, args=args)
        if int(reply[0]) == 1:
            return "ok", 0, [float(v) for v in reply[1:]]
        if reply[1] == "l":
            return "lost", 0, []
        if reply[1] == "b":
            return "budget", int(reply[2]) - 1, [float(reply[3])]
        return "rate", int(reply[2]) - 1, [float(v) for v in reply[3:]]

    async def settle_many(self, batch: list[Settlement]) -> list[SettleResult]:
        """Settle a batch in one round trip (a pipeline of script calls)."""
        async with self.client.pipeline(transaction=False) as pipe:
            for item in batch:
                hold = item.hold
                refs = hold.counters if hold is not None else ()
                request_id = hold.request_id if hold is not None else "-"
                keys = [self.hold_key(request_id), self.holds_key]
                keys.extend(self.counter_key(ref.ident) for ref in refs)
                keys.extend(self.bucket_key(key) for key, _ in item.buckets)
                args: list = [
                    request_id,
                    item.cost_units,
                    len(refs),
                    len(item.buckets),
                    1 if hold else 0,
                    item.token_delta,
                ]
                args.extend(capacity for _, capacity in item.buckets)
                await self._settle(keys=keys, args=args, client=pipe)
            replies = await pipe.execute()
        results = []
        for item, reply in zip(batch, replies, strict=True):
            refs = item.hold.counters if item.hold is not None else ()
            spent = {ref.ident: int(value) for ref, value in zip(refs, reply[1:], strict=True)}
            results.append(SettleResult(owned=bool(int(reply[0])), spent=spent))
        return results

    async def reap(self, *, now: datetime, limit: int = 200) -> list[dict]:
        """Release holds past their expiry; returns what the ledger needs to record each."""
        due = await self.client.zrangebyscore(self.holds_key, "-inf", now.timestamp(), start=0, num=limit)
        released = []
        for request_id in due:
            data = await self.client.hgetall(self.hold_key(request_id))
            if not data:
                await self.client.zrem(self.holds_key, request_id)
                continue
            keys = [self.hold_key(request_id), self.holds_key, *data.get("keys", "").split()]
            if int(await self._release(keys=keys, args=[request_id])):
                organization_id, created, idents = data.get("payload", "||").split("|", 2)
                released.append(
                    {
                        "request_id": request_id,
                        "organization_id": int(organization_id or 0),
                        "counters": [i for i in idents.split(",") if i],
                        "amount_units": int(data["amount"]),
                        "created_at": datetime.fromtimestamp(float(created or 0), UTC),
                        "expires_at": datetime.fromtimestamp(float(data.get("expires") or 0), UTC),
                    }
                )
        return released

    async def gate(self, *, groups: list[tuple[Bucket | None, Bucket | None]]) -> tuple[int, float]:
        """The index of the first group with room in all its buckets (charged), or (-1, seconds to wait)."""
        keys: list[str] = []
        args: list = [len(groups)]
        for pair in groups:
            for bucket in pair:
                keys.append(self.bucket_key(bucket.key) if bucket is not None else self.prefix + "r:none")
                args.extend((bucket.capacity, bucket.cost) if bucket is not None else (0, 0))
        reply = await self._gate(keys=keys, args=args)
        return int(reply[0]) - 1, float(reply[1])

    async def counters_read(self, idents: list[str]) -> dict[str, tuple[int, int]]:
        if not idents:
            return {}
        async with self.client.pipeline(transaction=False) as pipe:
            for ident in idents:
                pipe.hmget(self.counter_key(ident), "spent", "held")
            replies = await pipe.execute()
        return {
            ident: (int(spent or 0), int(held or 0))
            for ident, (spent, held) in zip(idents, replies, strict=True)
            if spent is not None or held is not None
        }

    async def raise_hold(self, *, hold: Hold, extra: int) -> tuple[str, int, int]:
        """Raise an open hold by `extra` on every counter: ('ok', 0, new amount) | ('budget', index, used)
        | ('gone', 0, 0) when the hold is no longer open | ('lost', 0, 0)."""
        keys = [self.hold_key(hold.request_id), self.epoch_key]
        args: list = [extra, len(hold.counters)]
        for ref in hold.counters:
            keys.append(self.counter_key(ref.ident))
            args.extend((ref.budget.limit_units, 1 if ref.budget.hard else 0))
        reply = await self._raise(keys=keys, args=args)
        if int(reply[0]) == 1:
            return "ok", 0, int(reply[1])
        if reply[1] == "h":
            return "gone", 0, 0
        if reply[1] == "l":
            return "lost", 0, 0
        return "budget", int(reply[2]) - 1, int(float(reply[3]))

    async def renew(self, expiries: dict[str, float]) -> int:
        """Move the expiry of open holds (request id -> epoch seconds); holds already gone are skipped."""
        if not expiries:
            return 0
        keys = [self.hold_key(request_id) for request_id in expiries]
        args: list = [self.holds_key]
        for request_id, at in expiries.items():
            args.extend((f"{at:.6f}", request_id))
        return int(await self._renew(keys=keys, args=args))

    async def epoch_present(self) -> bool:
        return bool(await self.client.exists(self.epoch_key))

    async def restore_lock(self, token: str, *, seconds: int = 30) -> bool:
        return bool(await self.client.set(self.lock_key, token, nx=True, ex=seconds))

    async def restore_unlock(self, token: str) -> None:
        if await self.client.get(self.lock_key) == token:
            await self.client.delete(self.lock_key)

    async def restore(self, *, counters: list[tuple[str, int, int, int]], holds: list[dict], epoch: str) -> bool:
        """Put counters (ident, spent, held, expire at) and open holds back and write the epoch, at once;
        False when another process did it first. A counter's spend is never lowered."""
        payload = {
            "counters": [
                [self.counter_key(ident), spent, held, expire_at] for ident, spent, held, expire_at in counters
            ],
            "holds": [
                [
                    self.hold_key(h["request_id"]),
                    h["request_id"],
                    h["amount_units"],
                    " ".join(self.counter_key(i) for i in h["counters"]),
                    f"{h['organization_id']}|{h['created_at'].timestamp():.6f}|" + ",".join(h["counters"]),
                    f"{h['expires_at'].timestamp():.6f}",
                ]
                for h in holds
            ],
        }
        return bool(int(await self._restore(keys=[self.epoch_key, self.holds_key], args=[json.dumps(payload), epoch])))

    async def close(self) -> None:
        await self.client.aclose()
