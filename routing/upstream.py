"""The pooled HTTP client the gateway calls providers with: httpx on aiohttp, no cookies.

One client serves every tenant, so it must not carry state from one call to the
next: a cookie a provider sets (CDNs in front of the big APIs set them on every
answer) would otherwise be stored and sent with every later call to that host,
whoever makes it. Neither httpx's jar nor aiohttp's keeps anything, which also
saves the cookie parsing and matching both do on every request and response.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport


class _NoCookies(httpx.Cookies):
    """Always empty: what a response sets is dropped."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None

    def set(self, *args: Any, **kwargs: Any) -> None:
        return None


_NO_COOKIES = _NoCookies()


class UpstreamClient(httpx.AsyncClient):
    """An `httpx.AsyncClient` without a cookie jar (cookies given per request still go out)."""

    @property
    def cookies(self) -> httpx.Cookies:
        return _NO_COOKIES

    @cookies.setter
    def cookies(self, value: Any) -> None:
        return None


def upstream_client(*, max_connections: int, timeout: float, keepalive_expiry: float = 30.0) -> UpstreamClient:
    """The gateway's upstream client: at most `max_connections` open, kept alive `keepalive_expiry` s."""
    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections, keepalive_expiry=keepalive_expiry
    )
    transport = AiohttpTransport(limits=limits)

    def session() -> aiohttp.ClientSession:  # made on first use, inside the running loop
        connector = aiohttp.TCPConnector(
            limit=max_connections, keepalive_timeout=keepalive_expiry, ssl=transport.ssl_context
        )
        return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())

    transport.client = session
    return UpstreamClient(transport=transport, timeout=timeout)
