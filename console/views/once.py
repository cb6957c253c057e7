"""Secrets shown once, with post / redirect / get.

A create view stashes the new secret in the (server-side) session and redirects;
the page it redirects to takes the secret out again. A refresh of that page finds
nothing and says so, instead of creating another live credential.
"""

from __future__ import annotations

from console.access import HtmxHttpRequest

SESSION_KEY = "gatehouse_once"


def secret_stash(request: HtmxHttpRequest, *, kind: str, pk: int, secret: str) -> None:
    stash = dict(request.session.get(SESSION_KEY, {}))
    stash[f"{kind}:{pk}"] = secret
    request.session[SESSION_KEY] = stash


def secret_take(request: HtmxHttpRequest, *, kind: str, pk: int) -> str | None:
    """The stashed secret, removed from the session: a second call returns None."""
    stash = dict(request.session.get(SESSION_KEY, {}))
    secret = stash.pop(f"{kind}:{pk}", None)
    if secret is not None:
        request.session[SESSION_KEY] = stash
    return secret
