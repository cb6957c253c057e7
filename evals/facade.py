"""What other apps may call of `evals`.

Routing compiles routes that require a minimum evaluation score (`min_score`) from
`scores_latest`: a frozen mapping read once per snapshot build, never per request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType

EMPTY: Mapping[tuple[str, str], Decimal] = MappingProxyType({})


@dataclass(frozen=True)
class ModelScore:
    suite: str
    model: str
    score: Decimal
    run_id: int


def scores_latest(*, organization_ids: Iterable[int]) -> Mapping[int, Mapping[tuple[str, str], Decimal]]:
    """Per organization, {(suite name, model name): the model's latest score (0..1) on that suite}."""
    from .models import Score

    ids = list(organization_ids)
    if not ids:
        return MappingProxyType({})
    found: dict[int, dict[tuple[str, str], Decimal]] = {}
    rows = (
        Score.objects.filter(suite__organization_id__in=ids)
        .order_by("-created_at", "-id")
        .values_list("suite__organization_id", "suite__name", "model", "score")
    )
    for org_id, suite, model, score in rows.iterator():
        found.setdefault(org_id, {}).setdefault((suite, model), score)
    return MappingProxyType({org: MappingProxyType(scores) for org, scores in found.items()})


def model_scores(*, organization_id: int, model: str) -> list[ModelScore]:
    """A model's latest score on each suite (for model cards)."""
    from .selectors import model_scores as select

    return [
        ModelScore(suite=s.suite.name, model=s.model, score=s.score, run_id=s.run_id)
        for s in select(organization_id=organization_id, model=model)
    ]
