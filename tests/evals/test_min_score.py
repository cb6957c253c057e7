"""Routes that require a minimum evaluation score skip the targets below it, through
`/v1` against the simulator and in the console's dry run."""

from __future__ import annotations

import httpx
from django.urls import reverse

from evals.facade import scores_latest
from evals.models import Score
from evals.runner import run_execute
from evals.services import run_create
from routing import services as routing_services
from tests.conftest import gateway_sync

HTMX = {"HTTP_HX_REQUEST": "true"}


def _chat(demo, model: str) -> httpx.Response:
    return httpx.post(
        demo.base_url + "/chat/completions",
        headers={"authorization": f"Bearer {demo.secret}"},
        json={"model": model, "messages": [{"role": "user", "content": "hello"}], "max_tokens": 8},
        timeout=20,
    )


def test_min_score_skips_low_scoring_targets_in_v1_and_the_dry_run(demo, starter, client):
    demo_org = demo.org
    suite = starter["arithmetic"]
    run = run_execute(run_id=run_create(suite=suite, models=["gpt-4o-mini", "gpt-5.5"], enqueue=False).id)
    scores = {s.model: s.score for s in Score.objects.filter(run=run)}
    assert scores["gpt-5.5"] > scores["gpt-4o-mini"]
    latest = scores_latest(organization_ids=[demo_org.id])[demo_org.id]
    assert latest[(suite.name, "gpt-5.5")] == scores["gpt-5.5"]

    owner = demo.owner
    routing_services.policy_propose(
        organization=demo_org,
        actor=owner,
        document={
            "routes": [
                {
                    "name": "accurate",
                    "strategy": "weighted",
                    "targets": [{"model": "gpt-4o-mini", "weight": 5}, {"model": "gpt-5.5", "weight": 1}],
                    "min_score": {"suite": suite.name, "score": float(scores["gpt-5.5"])},
                },
                {
                    "name": "unscored",
                    "targets": [{"model": "gpt-4o-mini"}],
                    "min_score": {"suite": "no-such-suite", "score": 0.5},
                },
            ]
        },
    )
    gateway_sync()
    for _ in range(6):
        response = _chat(demo, "accurate")
        assert response.status_code == 200, response.text
        assert response.headers["x-gatehouse-model"] == "gpt-5.5"
    refused = _chat(demo, "unscored")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "no_compliant_model"

    client.force_login(owner)
    response = client.post(
        reverse("routing:dry-run"),
        {"request": '{"model": "accurate", "messages": [{"role": "user", "content": "hi"}]}', "version": "live"},
        **HTMX,
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert f"gpt-4o-mini scores {scores['gpt-4o-mini']:.0%} on {suite.name}, below the route" in body


def test_a_bad_min_score_is_refused_with_its_path():
    from routing.policy.document import PolicyError, policy_normalize

    try:
        policy_normalize({"routes": [{"name": "r", "targets": [{"model": "m"}], "min_score": {"score": 2}}]})
    except PolicyError as exc:
        text = " ".join(exc.problems)
    else:
        raise AssertionError("a min_score without a suite and above 1 was accepted")
    assert "min_score.suite" in text and "min_score.score" in text
