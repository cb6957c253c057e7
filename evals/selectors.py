"""Reads for evaluation pages: suites, runs, leaderboards, diffs, trends."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Count, QuerySet

from .models import Regression, Result, Run, Score, Suite


@dataclass(frozen=True)
class LeaderRow:
    model: str
    score: Decimal
    passed: int
    cases: int
    cost_per_case: Decimal
    p50_latency_ms: int
    run_id: int
    created_at: datetime
    pareto: bool


@dataclass(frozen=True)
class DiffRow:
    case_id: int
    case_name: str
    question: str
    answer_a: str
    passed_a: bool | None
    answer_b: str
    passed_b: bool | None

    @property
    def differs(self) -> bool:
        return self.passed_a != self.passed_b


def suites_for(*, organization_id: int) -> QuerySet[Suite]:
    return Suite.objects.filter(organization_id=organization_id).annotate(case_count=Count("cases")).order_by("name")


def runs_for(*, organization_id: int, suite: Suite | None = None) -> QuerySet[Run]:
    runs = Run.objects.filter(organization_id=organization_id).select_related("suite")
    return runs.filter(suite=suite) if suite is not None else runs


def latest_scores(*, suite: Suite) -> list[Score]:
    """Each model's most recent score on the suite."""
    seen: dict[str, Score] = {}
    for score in Score.objects.filter(suite=suite).order_by("-created_at", "-id"):
        seen.setdefault(score.model, score)
    return list(seen.values())


def pareto_front(points: list[tuple[Decimal, Decimal]]) -> list[bool]:
    """For (score, cost) points: is each one on the front (no other is better or equal
    on both and strictly better on one)?"""
    flags = []
    for score, cost in points:
        dominated = any(
            (s >= score and c <= cost) and (s > score or c < cost) for s, c in points if (s, c) != (score, cost)
        )
        flags.append(not dominated)
    return flags


def leaderboard(*, suite: Suite) -> list[LeaderRow]:
    scores = latest_scores(suite=suite)
    front = pareto_front([(s.score, s.cost_per_case) for s in scores])
    rows = [
        LeaderRow(
            model=s.model,
            score=s.score,
            passed=s.passed,
            cases=s.cases,
            cost_per_case=s.cost_per_case,
            p50_latency_ms=s.p50_latency_ms,
            run_id=s.run_id,
            created_at=s.created_at,
            pareto=on_front,
        )
        for s, on_front in zip(scores, front, strict=True)
    ]
    return sorted(rows, key=lambda r: (-r.score, r.cost_per_case, r.model))


def trend(*, suite: Suite, model: str | None = None, limit: int = 200) -> list[Score]:
    scores = Score.objects.filter(suite=suite).order_by("created_at", "id")
    if model:
        scores = scores.filter(model=model)
    return list(scores[:limit])


def run_diff(*, run: Run, model_a: str, model_b: str) -> list[DiffRow]:
    results: dict[tuple[int, str], Result] = {
        (r.case_id, r.model): r for r in run.results.filter(model__in=[model_a, model_b])
    }
    rows = []
    for case in run.suite.cases.all():
        a, b = results.get((case.id, model_a)), results.get((case.id, model_b))
        question = next((str(m.get("content")) for m in reversed(case.messages) if m.get("role") == "user"), "")
        rows.append(
            DiffRow(
                case_id=case.id,
                case_name=case.name or f"case {case.position}",
                question=question,
                answer_a=a.answer if a else "",
                passed_a=a.passed if a else None,
                answer_b=b.answer if b else "",
                passed_b=b.passed if b else None,
            )
        )
    return rows


def model_scores(*, organization_id: int, model: str) -> list[Score]:
    """A model's latest score on each suite of the organization."""
    seen: dict[int, Score] = {}
    for score in (
        Score.objects.filter(suite__organization_id=organization_id, model=model)
        .select_related("suite")
        .order_by("-created_at", "-id")
    ):
        seen.setdefault(score.suite_id, score)
    return sorted(seen.values(), key=lambda s: s.suite.name)


def regressions_for(*, organization_id: int, model: str | None = None) -> QuerySet[Regression]:
    found = Regression.objects.filter(suite__organization_id=organization_id).select_related("suite")
    return found.filter(model=model) if model else found
