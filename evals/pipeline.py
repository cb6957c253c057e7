"""The gateway's pipeline for evaluation runs, reached only through `routing.facade`.

`routing.facade` reads a key's context with `console.keycache.key_context_by_id`,
which the console does not define yet on main; until it does, `facade()` supplies
that one lookup (the same context `/v1` builds for the key, by id) before importing
the facade. Once the console has it, the shim is never installed.
"""

from __future__ import annotations

from types import ModuleType


def _key_context_by_id(key_id: int):
    from django.db import close_old_connections

    from console import keycache
    from console.models import ApiKey

    try:
        key = ApiKey.objects.filter(pk=key_id).first()
        return keycache._context_from(key) if key is not None else None
    finally:
        close_old_connections()


def facade() -> ModuleType:
    """`routing.facade`, importable."""
    from console import keycache

    if not hasattr(keycache, "key_context_by_id"):
        keycache.key_context_by_id = _key_context_by_id
    from routing import facade as routing_facade

    return routing_facade
