"""Checks of the names a normalized policy document points at: routes, models and
deployments must exist (the registry is consulted by the caller)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


def policy_references(
    document: Mapping[str, Any],
    *,
    model_exists: Callable[[str], bool],
    deployment_exists: Callable[[str], bool],
) -> list[str]:
    """Problems with names a normalized document points at (routes, models, deployments)."""
    problems: list[str] = []
    routes = {r["name"]: r for r in document["routes"]}

    def destination(name: str, path: str) -> None:
        if name not in routes and not model_exists(name):
            problems.append(f"{path}: {name!r} is neither a route nor a model")

    default = document["settings"]["default_route"]
    if default:
        destination(default, "settings.default_route")
    for index, route in enumerate(document["routes"]):
        path = f"routes[{index}]"
        for tindex, target in enumerate(route["targets"]):
            if "model" in target and not model_exists(target["model"]):
                problems.append(f"{path}.targets[{tindex}].model: unknown model {target['model']!r}")
            if "deployment" in target and not deployment_exists(target["deployment"]):
                problems.append(f"{path}.targets[{tindex}].deployment: unknown deployment {target['deployment']!r}")
        for findex, fallback in enumerate(route["fallbacks"]):
            destination(fallback["route"], f"{path}.fallbacks[{findex}].route")
        for lindex, layer in enumerate(route["layers"]):
            if "model" in layer and not model_exists(layer["model"]):
                problems.append(f"{path}.layers[{lindex}].model: unknown model {layer['model']!r}")
            if "route" in layer:
                inner = routes.get(layer["route"])
                if inner is None:
                    problems.append(f"{path}.layers[{lindex}].route: unknown route {layer['route']!r}")
                elif inner["kind"] == "cascade":
                    problems.append(f"{path}.layers[{lindex}].route: a layer cannot be another cascade")
        compress = route["compress"]["model"]
        if compress and not model_exists(compress):
            problems.append(f"{path}.compress.model: unknown model {compress!r}")
    for index, rule in enumerate(document["rules"]):
        destination(rule["route"], f"rules[{index}].route")
    for subject in document["matrix"]:
        if not model_exists(subject) and not deployment_exists(subject):
            problems.append(f"matrix.{subject}: neither a model nor a deployment")
    return problems
