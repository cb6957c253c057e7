"""Until routing/runtime.py owns its key cache (it is being rewritten on main), it still
imports the name `console.keycache.key_cache`, and tests/conftest.py imports
routing/runtime.py after every database test. This fixture gives that import a real
`KeyCache` for the test session only; production code has no such instance.
Delete this module once the runtime builds its own `KeyCache`."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def legacy_runtime_key_cache():
    import console.keycache as module

    if hasattr(module, "key_cache"):
        yield
        return
    with ThreadPoolExecutor(4, thread_name_prefix="legacy-keys") as executor:
        module.key_cache = module.KeyCache(executor=executor)
        yield
        del module.key_cache


@pytest.fixture(scope="session", autouse=True)
def pooled_connections_closed(django_db_setup):
    """Lookups run in executor threads; on PostgreSQL their pooled connections must be
    closed before the test database is dropped."""
    yield
    from tests.conftest import close_pools

    close_pools()


def gateway_wired() -> bool:
    """Whether the running gateway reads the change feed through `ChangeFeed` and passes
    the client address, key cache and limiter to `authenticate` (see docs/change-feed.md).
    Read as text: the modules cannot be imported before that wiring exists."""
    root = Path(__file__).resolve().parent.parent / "routing"
    runtime, views = (root / "runtime.py").read_text(), (root / "views.py").read_text()
    return "ChangeFeed" in runtime and "limiter=" in views


def gateway_limiters_reset(client: str) -> None:
    """Forget a client's failed authentications in every running gateway loop
    (tests share 127.0.0.1 with the tests that follow)."""
    import asyncio

    from routing import runtime

    for loop, current in list(runtime._runtimes.items()):
        if loop.is_running() and not loop.is_closed():
            asyncio.run_coroutine_threadsafe(current.auth_limiter.reset(client), loop).result(5)
