"""Routes as `/v1/models` entries, so SDKs that list or look up models see aliases too."""

from __future__ import annotations

from typing import Any

from console.keycache import KeyContext
from routing.engine.snapshot import OrgPolicy


def route_model_object(policy: OrgPolicy, key: KeyContext, name: str) -> dict[str, Any] | None:
    route = policy.routes.get(name)
    if route is None or not key.allows(name):
        return None
    if not route.candidates and not any(layer.route.candidates for layer in route.layers):
        return None
    return {"id": name, "object": "model", "created": 0, "owned_by": "gatehouse-route"}


def route_model_objects(policy: OrgPolicy, key: KeyContext, *, exclude: set[str]) -> list[dict[str, Any]]:
    found = (route_model_object(policy, key, name) for name in policy.routes if name not in exclude)
    return [entry for entry in found if entry is not None]
