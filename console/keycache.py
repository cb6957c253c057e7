"""The hot-path accessor for virtual keys.

The gateway never queries the database per request for a key it has seen: the
context is cached in the process and dropped when the change feed names the key
(revocation, edits) — every process reads that feed, so a revoked key stops
working everywhere within one poll interval. Expiry needs no event: it is checked
on every request against the cached timestamp.

Unknown secrets are where a flood hurts, so a miss is bounded three ways:
concurrent lookups of one digest share one query; at most `max_concurrent`
distinct digests are looked up at once (the rest wait in a bounded queue, never
holding a thread); and a miss is remembered for `negative_ttl` seconds. The
per-address failed-auth limit (`console.authlimit`) stops a flood before it
reaches the cache at all.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass

from django.db import close_old_connections

from console.models import ApiKey
from console.services import secret_hash


@dataclass(frozen=True, slots=True)
class KeyContext:
    key_id: int
    name: str
    prefix: str
    organization_id: int
    team_id: int | None
    user_id: int | None
    allowed_models: frozenset[str]  # empty: every model
    expires_at: float | None  # epoch seconds
    revoked: bool
    data_classification: str
    app_name: str
    tags: tuple[str, ...]

    def allows(self, model: str) -> bool:
        return not self.allowed_models or model in self.allowed_models

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and self.expires_at <= now


def _context_from(key: ApiKey) -> KeyContext:
    return KeyContext(
        key_id=key.id,
        name=key.name,
        prefix=key.prefix,
        organization_id=key.organization_id,
        team_id=key.team_id,
        user_id=key.user_id,
        allowed_models=frozenset(key.allowed_models or ()),
        expires_at=key.expires_at.timestamp() if key.expires_at else None,
        revoked=key.revoked_at is not None,
        data_classification=key.data_classification,
        app_name=key.app_name,
        tags=tuple(str(t) for t in key.tags or ()),
    )


def key_context_load(digest: str) -> KeyContext | None:
    key = ApiKey.objects.filter(secret_hash=digest).first()
    return _context_from(key) if key is not None else None


def key_context_fetch(digest: str) -> KeyContext | None:
    """`key_context_load` for an executor's thread: the connection goes back after each
    lookup (with CONN_MAX_AGE=0 it is closed, or returned to the pool)."""
    try:
        return key_context_load(digest)
    finally:
        close_old_connections()


class KeyLookupBusy(Exception):
    """More distinct unknown keys are waiting for a lookup than the queue holds."""


@dataclass(frozen=True, slots=True)
class KeyCacheSettings:
    max_concurrent: int = 8
    max_queued: int = 1000
    negative_ttl: float = 30.0
    max_entries: int = 100_000

    @classmethod
    def from_settings(cls) -> KeyCacheSettings:
        from django.conf import settings

        conf = settings.GATEHOUSE
        return cls(
            max_concurrent=conf["KEY_LOOKUP_CONCURRENCY"],
            max_queued=conf["KEY_LOOKUP_QUEUE"],
            negative_ttl=conf["KEY_NEGATIVE_TTL"],
            max_entries=conf["KEY_CACHE_MAX_ENTRIES"],
        )


class KeyCache:
    """Virtual key contexts by secret digest; one per process, owned by the composition root.

    Thread-safe and loop-agnostic: lookups are `concurrent.futures` futures run on
    `executor`, awaited with `asyncio.wrap_future`, so several event loops may share
    one cache.
    """

    def __init__(
        self,
        *,
        executor: Executor,
        config: KeyCacheSettings | None = None,
        loader: Callable[[str], KeyContext | None] = key_context_fetch,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._executor = executor
        self.config = config or KeyCacheSettings()
        self._loader = loader
        self._clock = clock
        self._lock = threading.Lock()
        self._hits: dict[str, KeyContext] = {}
        self._misses: dict[str, float] = {}
        self._inflight: dict[str, Future] = {}
        self._queued: deque[tuple[str, Future]] = deque()
        self._running = 0
        # Bumped by every invalidation: a load that started before one is not cached.
        self._epoch = 0

    def peek(self, secret: str) -> KeyContext | None:
        """The cached context of a known key, without any lookup."""
        return self._hits.get(secret_hash(secret))

    def pending(self, secret: str) -> bool:
        """Whether a lookup of this secret is already running (joining it costs no query)."""
        with self._lock:
            return secret_hash(secret) in self._inflight

    async def lookup(self, secret: str) -> KeyContext | None:
        return await self.lookup_digest(secret_hash(secret))

    async def lookup_digest(self, digest: str) -> KeyContext | None:
        context = self._hits.get(digest)
        if context is not None:
            return context
        missed_at = self._misses.get(digest)
        if missed_at is not None and self._clock() - missed_at < self.config.negative_ttl:
            return None
        return await asyncio.wrap_future(self._load(digest))

    def _load(self, digest: str) -> Future:
        with self._lock:
            future = self._inflight.get(digest)
            if future is not None:
                return future
            future = Future()
            if self._running < self.config.max_concurrent:
                self._running += 1
                self._inflight[digest] = future
                self._executor.submit(self._work, digest, future, self._epoch)
            elif len(self._queued) < self.config.max_queued:
                self._inflight[digest] = future
                self._queued.append((digest, future))
            else:
                future.set_exception(KeyLookupBusy())
            return future

    def _work(self, digest: str, future: Future, epoch: int) -> None:
        # One worker slot runs lookups until the queue is empty, so waiting digests hold no thread.
        while True:
            try:
                context = self._loader(digest)
            except BaseException as exc:
                with self._lock:
                    self._forget(digest, future)
                future.set_exception(exc)
            else:
                with self._lock:
                    if epoch == self._epoch:
                        self._store(digest, context)
                    self._forget(digest, future)
                future.set_result(context)
            with self._lock:
                if not self._queued:
                    self._running -= 1
                    return
                digest, future = self._queued.popleft()
                epoch = self._epoch

    def _forget(self, digest: str, future: Future) -> None:
        if self._inflight.get(digest) is future:
            del self._inflight[digest]

    def _store(self, digest: str, context: KeyContext | None) -> None:
        if len(self._hits) + len(self._misses) > self.config.max_entries:
            self._misses.clear()
            if len(self._hits) > self.config.max_entries:
                self._hits.clear()
        if context is None:
            self._misses[digest] = self._clock()
        else:
            self._hits[digest] = context
            self._misses.pop(digest, None)

    def invalidate(self, digest: str) -> None:
        if digest == "*":
            self.clear()
            return
        with self._lock:
            self._epoch += 1
            self._hits.pop(digest, None)
            self._misses.pop(digest, None)
            self._inflight.pop(digest, None)

    def clear(self) -> None:
        with self._lock:
            self._epoch += 1
            self._hits.clear()
            self._misses.clear()
            self._inflight.clear()

    def __len__(self) -> int:
        return len(self._hits) + len(self._misses)


def key_context_by_id(key_id: int) -> KeyContext | None:
    """The context of a key by its id (the workspace's and evaluations' own keys)."""
    key = ApiKey.objects.filter(pk=key_id).first()
    return _context_from(key) if key is not None else None
