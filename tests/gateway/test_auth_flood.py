"""Random invalid keys cannot queue database lookups without bound.

Lookups go to the real database through the real loader; a counting wrapper
around it records which digests were queried and how many ran at once.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connections

from budgets.clock import SettableClock
from console import services
from console.authlimit import AuthLimitSettings, MemoryAuthLimiter, RedisAuthLimiter
from console.keycache import KeyCache, KeyCacheSettings, key_context_fetch
from routing.errors import GatewayError
from routing.pipeline.authenticate import authenticate, client_address
from tests.conftest import server_gateway


class CountingLoader:
    """The real loader, counted; `gate` holds every query until the test opens it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.queried: Counter[str] = Counter()
        self.running = 0
        self.most = 0
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, digest: str):
        with self.lock:
            self.queried[digest] += 1
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            assert self.gate.wait(10)
            return key_context_fetch(digest)
        finally:
            with self.lock:
                self.running -= 1

    def wait_running(self, count: int) -> None:
        deadline = time.monotonic() + 10
        while self.running < count:
            assert time.monotonic() < deadline, f"only {self.running} of {count} lookups started"
            time.sleep(0.005)


@pytest.fixture
def executor():
    with ThreadPoolExecutor(64, thread_name_prefix="keys") as pool:
        yield pool


@pytest.fixture
def issued(transactional_db):
    org = services.organization_create(name="Flood Org")
    return services.api_key_create(organization=org, name="app")


def random_key() -> str:
    return services.KEY_PREFIX + secrets.token_urlsafe(30)


async def _wait_until(predicate) -> None:
    for _ in range(2000):
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not reached")


@pytest.mark.asyncio
async def test_many_distinct_unknown_keys_are_looked_up_at_most_the_bound_at_once(issued, executor):
    loader = CountingLoader()
    loader.gate.clear()
    keys = KeyCache(executor=executor, loader=loader, config=KeyCacheSettings(max_concurrent=8, max_queued=1000))
    secrets_ = [random_key() for _ in range(199)] + [issued.secret]
    lookups = asyncio.gather(*(keys.lookup(s) for s in secrets_))
    await asyncio.to_thread(loader.wait_running, 8)
    assert loader.running == 8  # the other 192 wait in the queue, holding no thread
    loader.gate.set()
    results = await lookups
    assert loader.most == 8
    assert len(loader.queried) == 200 and set(loader.queried.values()) == {1}
    assert results[-1] is not None and results[-1].key_id == issued.key.id
    assert all(r is None for r in results[:-1])


@pytest.mark.asyncio
async def test_concurrent_lookups_of_one_unknown_key_share_one_query(transactional_db, executor):
    loader = CountingLoader()
    loader.gate.clear()
    keys = KeyCache(executor=executor, loader=loader)
    secret = random_key()
    lookups = asyncio.gather(*(keys.lookup(secret) for _ in range(100)))
    await asyncio.to_thread(loader.wait_running, 1)
    loader.gate.set()
    assert await lookups == [None] * 100
    assert sum(loader.queried.values()) == 1
    assert await keys.lookup(secret) is None  # remembered as a miss
    assert sum(loader.queried.values()) == 1


@pytest.mark.asyncio
async def test_a_key_invalidated_while_its_lookup_runs_is_not_cached(issued, executor):
    loader = CountingLoader()
    loader.gate.clear()
    keys = KeyCache(executor=executor, loader=loader)
    pending = asyncio.ensure_future(keys.lookup(issued.secret))
    await asyncio.to_thread(loader.wait_running, 1)
    keys.invalidate(issued.key.secret_hash)  # the feed announced a change during the query
    loader.gate.set()
    assert (await pending).key_id == issued.key.id
    await keys.lookup(issued.secret)
    assert loader.queried[issued.key.secret_hash] == 2


@pytest.mark.asyncio
async def test_a_full_lookup_queue_answers_busy_instead_of_growing(transactional_db, executor):
    loader = CountingLoader()
    loader.gate.clear()
    keys = KeyCache(executor=executor, loader=loader, config=KeyCacheSettings(max_concurrent=1, max_queued=2))
    limiter = MemoryAuthLimiter()
    first = [asyncio.ensure_future(keys.lookup(random_key())) for _ in range(3)]
    await asyncio.to_thread(loader.wait_running, 1)
    with pytest.raises(GatewayError) as refused:
        await authenticate(f"Bearer {random_key()}", client="10.0.0.3", keys=keys, limiter=limiter)
    assert (refused.value.status, refused.value.code) == (503, "key_lookup_busy")
    loader.gate.set()
    assert await asyncio.gather(*first) == [None, None, None]


async def _code(secret: str, *, client: str, keys: KeyCache, limiter) -> str:
    try:
        await authenticate(f"Bearer {secret}", client=client, keys=keys, limiter=limiter)
    except GatewayError as exc:
        return exc.code or ""
    return "ok"


@pytest.mark.asyncio
async def test_a_failed_auth_flood_is_refused_before_lookup_and_recovers_after_the_window(issued, executor):
    clock = SettableClock()
    loader = CountingLoader()
    keys = KeyCache(executor=executor, loader=loader)
    limiter = MemoryAuthLimiter(AuthLimitSettings(limit=30, window=60), clock=clock.timestamp)
    with clock.frozen(datetime(2026, 1, 5, 12, tzinfo=UTC)):
        assert await _code(issued.secret, client="10.0.0.1", keys=keys, limiter=limiter) == "ok"
        for _ in range(30):
            assert await _code(random_key(), client="10.0.0.1", keys=keys, limiter=limiter) == "invalid_api_key"
        queried = sum(loader.queried.values())
        with pytest.raises(GatewayError) as refused:
            await authenticate(f"Bearer {random_key()}", client="10.0.0.1", keys=keys, limiter=limiter)
        error = refused.value
        assert (error.status, error.code) == (429, "too_many_auth_failures")
        assert 1 <= int(error.headers["retry-after"]) <= 60
        assert sum(loader.queried.values()) == queried  # refused before any lookup
        # Another address is unaffected; a key this cache already knows still works from the flooded one.
        assert await _code(random_key(), client="10.0.0.2", keys=keys, limiter=limiter) == "invalid_api_key"
        assert await _code(issued.secret, client="10.0.0.1", keys=keys, limiter=limiter) == "ok"
        clock.advance(timedelta(seconds=60))
        for _ in range(30):
            assert await _code(random_key(), client="10.0.0.1", keys=keys, limiter=limiter) == "invalid_api_key"
        assert await _code(random_key(), client="10.0.0.1", keys=keys, limiter=limiter) == "too_many_auth_failures"


@pytest.mark.asyncio
async def test_a_concurrent_burst_of_bad_keys_gets_only_the_budget_of_lookups(transactional_db, executor):
    loader = CountingLoader()
    loader.gate.clear()
    keys = KeyCache(executor=executor, loader=loader)
    limiter = MemoryAuthLimiter(AuthLimitSettings(limit=30, window=60))
    burst = asyncio.gather(*(_code(random_key(), client="10.0.0.6", keys=keys, limiter=limiter) for _ in range(100)))
    await asyncio.to_thread(loader.wait_running, 8)
    loader.gate.set()
    codes = Counter(await burst)
    assert codes == {"invalid_api_key": 30, "too_many_auth_failures": 70}
    assert sum(loader.queried.values()) == 30


@pytest.mark.asyncio
async def test_revoked_and_expired_keys_count_as_failures(issued, executor):
    def revoke() -> None:
        try:
            services.api_key_revoke(key=issued.key)
        finally:
            connections.close_all()

    keys = KeyCache(executor=executor)
    limiter = MemoryAuthLimiter(AuthLimitSettings(limit=2, window=60))
    await asyncio.to_thread(revoke)
    assert await _code(issued.secret, client="10.0.0.4", keys=keys, limiter=limiter) == "revoked_api_key"
    assert await _code(issued.secret, client="10.0.0.4", keys=keys, limiter=limiter) == "revoked_api_key"
    assert await _code(issued.secret, client="10.0.0.4", keys=keys, limiter=limiter) == "too_many_auth_failures"


@pytest.mark.services
@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="REDIS_URL is not set")
@pytest.mark.asyncio
async def test_processes_share_the_failed_auth_budget_through_redis():
    clock = SettableClock()
    prefix = f"test:authfail:{secrets.token_hex(4)}"
    config = AuthLimitSettings(limit=5, window=60)
    one, two = (RedisAuthLimiter(os.environ["REDIS_URL"], config, prefix=prefix, clock=clock.timestamp) for _ in "12")
    try:
        with clock.frozen(datetime(2026, 1, 5, 12, tzinfo=UTC)):
            for limiter in (one, two, one, two, one):
                assert await limiter.take("10.1.1.1") == 0
            assert await two.take("10.1.1.1") == pytest.approx(12.0)  # one failure back every 60/5 s
            assert await one.take("10.1.1.2") == 0
            await one.give_back("10.1.1.2")
            clock.advance(timedelta(seconds=60))
            for limiter in (two, one, two, one, two):
                assert await limiter.take("10.1.1.1") == 0
            assert await one.take("10.1.1.1") > 0
            await two.reset("10.1.1.1")
            assert await one.take("10.1.1.1") == 0
    finally:
        await one.aclose()
        await two.aclose()


def test_the_gateway_answers_a_flood_of_bad_keys_with_429(demo):
    import httpx
    from django.conf import settings

    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    limit = settings.GATEHOUSE["AUTH_FAILURE_LIMIT"]
    try:
        with httpx.Client(base_url=demo.base_url, timeout=10) as client:
            for _ in range(limit):
                bad = client.post("/chat/completions", json=body, headers={"authorization": f"Bearer {random_key()}"})
                assert bad.status_code == 401
            refused = client.post("/chat/completions", json=body, headers={"authorization": f"Bearer {random_key()}"})
            assert refused.status_code == 429
            assert refused.json()["error"]["code"] == "too_many_auth_failures"
            assert int(refused.headers["retry-after"]) >= 1
    finally:
        server_gateway().call_soon(lambda: server_gateway().auth_limiter.reset("127.0.0.1"))


def test_the_client_address_comes_from_trusted_proxies_only():
    trusted = ("10.0.0.0/8", "192.168.1.1")
    assert client_address("10.0.0.5", "1.2.3.4, 192.168.1.1", trusted=trusted) == "1.2.3.4"
    assert client_address("8.8.8.8", "1.2.3.4", trusted=trusted) == "8.8.8.8"  # forged by an untrusted peer
    assert client_address("10.0.0.5", None, trusted=trusted) == "10.0.0.5"
    assert client_address("10.0.0.5", "1.2.3.4", trusted=()) == "10.0.0.5"
    assert client_address(None, None) == "unknown"


@pytest.mark.asyncio
async def test_an_operator_can_unblock_an_address():
    limiter = MemoryAuthLimiter(AuthLimitSettings(limit=1, window=60))
    assert await limiter.take("10.0.0.8") == 0
    assert await limiter.take("10.0.0.8") > 0
    await limiter.reset("10.0.0.8")
    assert await limiter.take("10.0.0.8") == 0


def test_a_burst_of_first_requests_with_one_good_key_is_not_taken_for_a_flood(demo):
    """Fifty requests at once from one address, with a key no process has seen yet: they
    share one lookup, and none is refused as a failed authentication."""
    import asyncio

    import httpx

    from console.services import api_key_create

    issued = api_key_create(organization=demo.org, name="burst", team=demo.team, user=demo.owner, actor=demo.owner)

    async def burst():
        async with httpx.AsyncClient(timeout=30) as client:
            return await asyncio.gather(
                *(
                    client.get(demo.base_url + "/models", headers={"authorization": f"Bearer {issued.secret}"})
                    for _ in range(50)
                )
            )

    responses = asyncio.run(burst())
    assert [r.status_code for r in responses] == [200] * 50
