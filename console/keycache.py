"""The hot-path accessor for virtual keys.

The gateway never queries the database per request for a key it has seen: the
context is cached in the process and dropped when the change feed names the key
(revocation, edits) — every process polls that feed, so a revoked key stops
working everywhere within one poll interval. Expiry needs no event: it is checked
on every request against the cached timestamp.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from asgiref.sync import sync_to_async

from console.models import ApiKey
from console.services import secret_hash

# Misses (unknown secrets) are cached too, so a flood of bad keys cannot reach the
# database; creating a key publishes its hash, which clears the negative entry.
NEGATIVE_TTL = 30.0
MAX_ENTRIES = 100_000


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


class KeyCache:
    def __init__(self) -> None:
        self._hits: dict[str, KeyContext] = {}
        self._misses: dict[str, float] = {}

    async def lookup(self, secret: str) -> KeyContext | None:
        digest = secret_hash(secret)
        context = self._hits.get(digest)
        if context is not None:
            return context
        missed_at = self._misses.get(digest)
        if missed_at is not None and time.monotonic() - missed_at < NEGATIVE_TTL:
            return None
        context = await sync_to_async(key_context_load)(digest)
        if len(self._hits) + len(self._misses) > MAX_ENTRIES:
            self._misses.clear()
            if len(self._hits) > MAX_ENTRIES:
                self._hits.clear()
        if context is None:
            self._misses[digest] = time.monotonic()
        else:
            self._hits[digest] = context
            self._misses.pop(digest, None)
        return context

    def invalidate(self, digest: str) -> None:
        if digest == "*":
            self.clear()
            return
        self._hits.pop(digest, None)
        self._misses.pop(digest, None)

    def clear(self) -> None:
        self._hits.clear()
        self._misses.clear()


key_cache = KeyCache()
