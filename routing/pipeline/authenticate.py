"""Stage 1 — authenticate: Bearer virtual key -> key context, from the key cache.

A known, valid key is answered from the cache with no other work. Anything else
first reserves a failure from the client address's failed-auth budget (given back
when the key turns out good), so an address that keeps presenting bad keys — one
after another or all at once — is refused (429) before its keys cost a lookup.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import time

from console.authlimit import AuthLimiter
from console.keycache import KeyCache, KeyContext, KeyLookupBusy
from routing.errors import GatewayError

JOIN_WAIT = 0.5  # seconds a refused request waits for a lookup of the same key to start or finish
JOIN_STEP = 0.01


def _unauthorized(message: str, code: str = "invalid_api_key") -> GatewayError:
    return GatewayError(message, status=401, type="invalid_request_error", code=code)


def bearer_secret(header: str | None) -> str:
    if not header:
        raise _unauthorized(
            "You didn't provide an API key. You need to provide your API key in an Authorization header "
            "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            code="missing_api_key",
        )
    scheme, _, secret = header.partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret:
        raise _unauthorized("The Authorization header must be 'Bearer YOUR_KEY'.")
    return secret


def client_address(remote: str | None, forwarded_for: str | None, *, trusted: tuple[str, ...] = ()) -> str:
    """The address a request came from, for the failed-auth limit.

    Behind a load balancer every request arrives from the balancer; when `remote` is
    one of the `trusted` proxies (addresses or networks), X-Forwarded-For is read
    from the right, skipping trusted hops, and the first other address is the
    client. A forged header from an untrusted peer is never believed."""
    networks = [ipaddress.ip_network(item, strict=False) for item in trusted]

    def is_trusted(address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in networks)

    client = remote or "unknown"
    if not networks or not is_trusted(client) or not forwarded_for:
        return client
    for hop in reversed([part.strip() for part in forwarded_for.split(",") if part.strip()]):
        client = hop
        if not is_trusted(hop):
            break
    return client


def _usable(context: KeyContext | None, now: float) -> bool:
    return context is not None and not context.revoked and not context.expired(now)


async def _joined(secret: str, keys: KeyCache) -> KeyContext | None:
    """The result of a lookup of this secret that others started (a burst of first requests
    with one key), without a query of our own; None when none appears within JOIN_WAIT."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + JOIN_WAIT
    while True:
        context = keys.peek(secret)
        if context is not None:
            return context
        if keys.pending(secret):
            return await keys.lookup(secret)  # joins the running lookup
        if loop.time() >= deadline:
            return None
        await asyncio.sleep(JOIN_STEP)


async def authenticate(header: str | None, *, client: str, keys: KeyCache, limiter: AuthLimiter) -> KeyContext:
    secret = bearer_secret(header)
    now = time.time()
    context = keys.peek(secret)
    if _usable(context, now):
        return context
    wait = await limiter.take(client)
    if wait > 0:
        # A burst of first requests with one new key: the requests that got a reservation
        # are starting its lookup (or have finished it). Joining that lookup, or reading its
        # result, costs no query, so a good key is never refused as a flood.
        context = await _joined(secret, keys)
        if _usable(context, now):
            return context
    if wait > 0:
        raise GatewayError(
            "Too many failed authentications from this address; retry later.",
            status=429,
            type="rate_limit_exceeded",
            code="too_many_auth_failures",
            headers={"retry-after": str(max(1, math.ceil(wait))), "x-should-retry": "false"},
        )
    try:
        context = await keys.lookup(secret)
    except KeyLookupBusy:
        await limiter.give_back(client)
        raise GatewayError(
            "The gateway is checking too many unknown keys right now; retry shortly.",
            status=503,
            type="service_unavailable",
            code="key_lookup_busy",
            headers={"retry-after": "1"},
        ) from None
    except BaseException:
        await limiter.give_back(client)
        raise
    if _usable(context, now):
        await limiter.give_back(client)
        return context
    # The reservation stays taken: it is this failure.
    if context is None:
        shown = secret[:8] + "…" if len(secret) > 8 else "…"
        raise _unauthorized(f"Incorrect API key provided: {shown}.")
    if context.revoked:
        raise _unauthorized("This API key has been revoked.", code="revoked_api_key")
    raise _unauthorized("This API key has expired.", code="expired_api_key")
