"""The recommend action: the models that meet a score on a suite, cheapest first, proposed
as a route that waits for a second owner or admin — never live on its own."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from evals.models import Score
from evals.recommend import route_recommend, route_recommendation
from evals.runner import run_execute
from evals.services import run_create
from routing.models import PolicyState, PolicyVersion
from routing.services import policy_approve

MODELS = ["gpt-4o-mini", "claude-sonnet-4-6", "gemini-3.1-pro", "gpt-5.5"]


@pytest.fixture
def scored(demo, starter):
    suite = starter["arithmetic"]
    run = run_execute(run_id=run_create(suite=suite, models=MODELS, enqueue=False).id)
    return suite, {s.model: s for s in Score.objects.filter(run=run)}


def test_the_recommended_route_lists_the_models_meeting_the_score_cheapest_first(scored):
    suite, scores = scored
    threshold = sorted(s.score for s in scores.values())[1]  # leaves out the lowest scorer at least
    route = route_recommendation(suite=suite, threshold=threshold)
    meeting = [s for s in scores.values() if s.score >= threshold]
    assert [t["model"] for t in route["targets"]] == [
        s.model for s in sorted(meeting, key=lambda s: (s.cost_per_case, -s.score, s.model))
    ]
    assert len(route["targets"]) < len(MODELS)
    assert route["strategy"] == "lowest_cost"
    assert route["min_score"] == {"suite": suite.name, "score": float(threshold)}
    with pytest.raises(ValidationError):
        route_recommendation(suite=suite, threshold=Decimal("1.01"))


def test_the_recommendation_is_pending_until_a_second_manager_approves(demo, scored, client):
    suite, scores = scored
    number, route = route_recommend(suite=suite, threshold=Decimal("0.5"), actor=demo.owner)
    version = PolicyVersion.objects.get(organization=demo.org, number=number)
    assert version.state == PolicyState.PENDING  # though this organization requires no approval
    assert route["name"] in [r["name"] for r in version.document["routes"]]
    with pytest.raises(PermissionDenied):
        policy_approve(version=version, actor=demo.owner)  # its proposer cannot approve it

    client.force_login(demo.owner)
    response = client.post(
        reverse("evals:suite-recommend", args=[suite.pk]), {"threshold": "0.5", "route": "cheap-enough"}
    )
    newer = PolicyVersion.objects.filter(organization=demo.org).order_by("-number").first()
    assert response.status_code == 302 and response["Location"].endswith(f"/history/{newer.number}/")
    assert newer.state == PolicyState.PENDING
    assert "cheap-enough" in [r["name"] for r in newer.document["routes"]]
    page = client.get(reverse("evals:suite-detail", args=[suite.pk]))
    assert b'data-testid="recommend-form"' in page.content
