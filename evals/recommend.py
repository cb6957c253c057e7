"""Recommend a route from a suite's leaderboard: the models that meet a score, cheapest
first, proposed as a policy version that waits for review (never live on its own)."""

from __future__ import annotations

from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError

from routing.facade import route_propose_for_review

from .models import Suite
from .selectors import leaderboard


def route_recommendation(*, suite: Suite, threshold: Decimal, name: str = "") -> dict:
    """The route: every model whose latest score is at least `threshold`, cheapest per case
    first (`lowest_cost`), and the same `min_score` so a later drop takes a model out."""
    if not Decimal(0) <= threshold <= Decimal(1):
        raise ValidationError({"threshold": "A score between 0 and 1."})
    meeting = sorted(
        (row for row in leaderboard(suite=suite) if row.score >= threshold),
        key=lambda row: (row.cost_per_case, -row.score, row.model),
    )
    if not meeting:
        raise ValidationError(f"No model scores {threshold:.0%} or more on {suite.name}: run the suite first.")
    return {
        "name": name or f"{suite.name}-recommended",
        "strategy": "lowest_cost",
        "targets": [{"model": row.model} for row in meeting],
        "min_score": {"suite": suite.name, "score": float(threshold)},
    }


def route_recommend(
    *, suite: Suite, threshold: Decimal, actor: AbstractBaseUser | None, name: str = ""
) -> tuple[int, dict]:
    """Propose the recommended route for review; returns the policy version number and the route."""
    route = route_recommendation(suite=suite, threshold=threshold, name=name)
    models = ", ".join(t["model"] for t in route["targets"])
    summary = f"Recommended by evaluation {suite.name} (score ≥ {threshold:.0%}): {models}"
    number = route_propose_for_review(organization=suite.organization, actor=actor, route=route, summary=summary)
    return number, route
