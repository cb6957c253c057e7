"""Each organization's layer over the catalog snapshot: contracted prices, hidden and
retired models, private models; and the organization's view the data plane reads."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from providers.snapshot import CatalogSnapshot, ModelInfo


@dataclass(frozen=True, slots=True)
class OrgLayer:
    hidden: frozenset[str] = frozenset()  # catalog models hidden from or retired by the organization
    models: dict[str, ModelInfo] = field(default_factory=dict)  # its prices and states; its private models


EMPTY_LAYER = OrgLayer()


def layers_build(catalog: dict[str, ModelInfo], private: list[ModelInfo]) -> dict[int, OrgLayer]:
    """One layer per organization that has settings or private models (one query)."""
    from providers.models_org import OrganizationModel, OrgLifecycle
    from providers.snapshot import Price

    hidden: dict[int, set[str]] = {}
    models: dict[int, dict[str, ModelInfo]] = {}
    rows = OrganizationModel.objects.filter(model__organization__isnull=True).values_list(
        "organization_id", "model__name", "visible", "lifecycle", "input_price", "output_price", "cached_input_price"
    )
    for org_id, name, visible, lifecycle, input_price, output_price, cached_price in rows:
        info = catalog.get(name)
        if info is None:
            continue  # retired in the catalog: gone for everyone
        if not visible or lifecycle == OrgLifecycle.RETIRED:
            hidden.setdefault(org_id, set()).add(name)
            continue
        listed = info.price
        price = Price(
            listed.input if input_price is None else input_price,
            listed.output if output_price is None else output_price,
            listed.cached_input if cached_price is None else cached_price,
        )
        if price == listed and not lifecycle:
            continue
        models.setdefault(org_id, {})[name] = replace(
            info, price=price, list_price=listed, lifecycle=lifecycle or info.lifecycle
        )
    for info in private:
        models.setdefault(info.organization_id, {})[info.name] = info
    return {
        org_id: OrgLayer(hidden=frozenset(hidden.get(org_id, ())), models=models.get(org_id, {}))
        for org_id in set(hidden) | set(models)
    }


def _visible_to(info: ModelInfo, organization_id: int) -> ModelInfo | None:
    """The model with the deployments the organization may use; None when every
    deployment it has serves other organizations only (then it is unknown here)."""
    deployments = info.deployments
    if not deployments:
        return info  # in the catalog, not deployed yet: the same for everyone
    visible = tuple(d for d in deployments if d.organization_id is None or d.organization_id == organization_id)
    if not visible:
        return None
    return info if len(visible) == len(deployments) else replace(info, deployments=visible)


def organization_view(catalog: CatalogSnapshot, organization_id: int) -> CatalogSnapshot:
    from providers.snapshot import CatalogSnapshot

    layer = catalog.layers.get(organization_id, EMPTY_LAYER)
    models: dict[str, ModelInfo] = {}
    for name, info in catalog.models.items():
        if name in layer.hidden:
            continue
        found = _visible_to(layer.models.get(name, info), organization_id)
        if found is not None:
            models[name] = found
    for name, info in layer.models.items():
        if info.organization_id == organization_id:
            found = _visible_to(info, organization_id)
            if found is not None:
                models[name] = found  # a private model stands before a catalog model of its name
    return CatalogSnapshot(models=models, retired=catalog.retired, organization_id=organization_id)
