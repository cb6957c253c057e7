"""Stage 1 — authenticate: Bearer virtual key -> key context, from the key cache."""

from __future__ import annotations

import time

from console.keycache import KeyCache, KeyContext
from routing.errors import GatewayError


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


async def authenticate(header: str | None, *, keys: KeyCache) -> KeyContext:
    secret = bearer_secret(header)
    context = await keys.lookup(secret)
    if context is None:
        shown = secret[:8] + "…" if len(secret) > 8 else "…"
        raise _unauthorized(f"Incorrect API key provided: {shown}.")
    if context.revoked:
        raise _unauthorized("This API key has been revoked.", code="revoked_api_key")
    if context.expired(time.time()):
        raise _unauthorized("This API key has expired.", code="expired_api_key")
    return context
