"""Stage 6 — route: model name -> ordered candidate deployments.

The foundation strategy is weighted-random order over the model's deployments;
routes, rules, cooldowns and the compliance matrix refine this list.
"""

from __future__ import annotations

import random

from providers.snapshot import CatalogSnapshot, DeploymentInfo, ModelInfo
from routing.errors import GatewayError
from routing.pipeline.context import RequestContext


def resolve_model(ctx: RequestContext, snapshot: CatalogSnapshot, name: str, *, capability: str) -> ModelInfo:
    model = snapshot.model(name)
    if model is None:
        raise GatewayError(
            f"The model `{name}` does not exist or you do not have access to it.",
            status=404,
            type="invalid_request_error",
            code="model_not_found",
            param="model",
        )
    if not ctx.key.allows(name):
        raise GatewayError(
            f"This API key is not allowed to use the model `{name}`.",
            status=403,
            type="permission_error",
            code="model_not_allowed",
            param="model",
        )
    if capability not in model.capabilities:
        raise GatewayError(
            f"The model `{name}` does not support {capability}.",
            status=400,
            type="invalid_request_error",
            code="unsupported_model_capability",
            param="model",
        )
    return model


def weighted_order(deployments: list[DeploymentInfo], rng: random.Random | None = None) -> list[DeploymentInfo]:
    """A weighted shuffle: heavier deployments tend to come first (Efraimidis–Spirakis)."""
    if len(deployments) <= 1:
        return list(deployments)
    draw = (rng or random).random
    keyed = [(draw() ** (1.0 / max(d.weight, 1)), d) for d in deployments if d.weight > 0]
    keyed.sort(key=lambda pair: pair[0], reverse=True)
    return [d for _, d in keyed]


def candidates(ctx: RequestContext, model: ModelInfo) -> list[DeploymentInfo]:
    available = model.deployments_for(ctx.key.organization_id)
    if not available:
        raise GatewayError(
            f"No deployment serves the model `{model.name}` right now.",
            status=503,
            type="service_unavailable",
            code="no_deployment",
            param="model",
        )
    return weighted_order(available)
