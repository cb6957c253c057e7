"""What other apps may call of `evals`.

Routing compiles routes that require a minimum evaluation score (`min_score`) from
`scores_latest`: a frozen mapping read once per snapshot build, never per request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
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


@dataclass(frozen=True)
class DeploymentMark:
    """Something the health page should show next to a deployment."""

    kind: str  # "regression" | "drift"
    text: str
    at: datetime


MARK_DRIFT_DAYS = 7


def deployment_marks(*, organization_id: int) -> dict[str, list[DeploymentMark]]:
    """Per deployment name: its open regressions (the model's latest score on a pinned suite
    is still the one that fell) and its version drifts of the last week, for this organization."""
    from django.utils import timezone

    from .models import Regression, Score, VersionDrift

    marks: dict[str, list[DeploymentMark]] = {}
    since = timezone.now() - timedelta(days=30)
    regressions = Regression.objects.filter(suite__organization_id=organization_id, created_at__gte=since)
    regressions = regressions.select_related("suite")
    latest_run: dict[tuple[int, str], int | None] = {}
    for regression in regressions:
        key = (regression.suite_id, regression.model)
        if key not in latest_run:
            latest_run[key] = (
                Score.objects.filter(suite_id=regression.suite_id, model=regression.model)
                .order_by("-created_at", "-id")
                .values_list("run_id", flat=True)
                .first()
            )
        if latest_run[key] != regression.run_id or not regression.deployment:
            continue
        marks.setdefault(regression.deployment, []).append(
            DeploymentMark(
                kind="regression",
                text=(
                    f"{regression.model} fell on {regression.suite.name}: "
                    f"{regression.previous:.0%} → {regression.current:.0%}"
                ),
                at=regression.created_at,
            )
        )
    drifts = VersionDrift.objects.filter(created_at__gte=timezone.now() - timedelta(days=MARK_DRIFT_DAYS))
    for drift in drifts:
        if organization_id not in drift.organization_ids:
            continue
        marks.setdefault(drift.deployment_name, []).append(
            DeploymentMark(
                kind="drift",
                text=f"version {drift.previous_version or '?'} → {drift.version}",
                at=drift.created_at,
            )
        )
    return marks
