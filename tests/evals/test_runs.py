"""Runs go through the real pipeline against the simulator, and their results hold up."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from evals import selectors
from evals.models import Result, Run, RunStatus, Score
from evals.runner import run_execute
from evals.services import run_cancel, run_create
from tests.conftest import usage_wait

from .conftest import MODELS


def test_a_run_scores_every_model_and_records_tokens_cost_and_latency(starter):
    suite = starter["arithmetic"]
    run = run_create(suite=suite, models=MODELS, concurrency=4, enqueue=False)
    run = run_execute(run_id=run.id)
    assert run.status == RunStatus.DONE, run.error
    assert run.completed == run.total == suite.cases.count() * len(MODELS)
    results = list(Result.objects.filter(run=run))
    assert all(r.status == 200 for r in results)
    assert all(r.prompt_tokens > 0 and r.completion_tokens > 0 for r in results)
    assert all(r.cost > 0 and r.deployment for r in results)
    assert all(r.ttft_ms is not None and r.ttft_ms <= r.latency_ms for r in results)
    # The cost of each answer is what its usage record says (priced by settle).
    for r in results[:4]:
        record = usage_wait(r.request_id)
        assert record.cost == r.cost and "eval" in record.tags
    scores = {s.model: s for s in Score.objects.filter(run=run)}
    assert set(scores) == set(MODELS)
    # The frontier models beat the edge model on the same cases (fixed per model and prompt).
    assert scores["gpt-5.5"].score > scores["gpt-4o-mini"].score
    for score in scores.values():
        assert score.cost_per_case == (score.cost / score.cases).quantize(Decimal("0.0000000001"))


def test_results_are_reproducible_between_runs(starter):
    suite = starter["classification"]
    first = run_execute(run_id=run_create(suite=suite, models=["gpt-4o-mini"], enqueue=False).id)
    second = run_execute(run_id=run_create(suite=suite, models=["gpt-4o-mini"], enqueue=False).id)
    answers = [list(run.results.order_by("case__position").values_list("answer", "passed")) for run in (first, second)]
    assert answers[0] == answers[1]


def test_extraction_suite_checks_json_against_the_schema(starter):
    run = run_execute(run_id=run_create(suite=starter["extraction"], models=["gpt-5.5"], enqueue=False).id)
    results = list(run.results.all())
    assert all(r.answer.startswith("{") for r in results), [(r.answer, r.detail) for r in results]
    assert sum(r.passed for r in results) >= len(results) - 2, [(r.answer, r.detail) for r in results]
    assert sum(r.passed for r in results) >= len(results) - 2


def test_a_cancelled_run_starts_no_case(starter):
    run = run_create(suite=starter["arithmetic"], models=MODELS, enqueue=False)
    run = run_cancel(run=run)
    assert run.status == RunStatus.CANCELLED
    run_execute(run_id=run.id)
    assert Result.objects.filter(run=run).count() == 0
    with pytest.raises(ValidationError):
        run_cancel(run=run)


def test_leaderboard_marks_the_pareto_front(starter):
    suite = starter["arithmetic"]
    run_execute(run_id=run_create(suite=suite, models=MODELS, enqueue=False).id)
    board = selectors.leaderboard(suite=suite)
    assert [row.model for row in board] and {row.model for row in board} == set(MODELS)
    front = [row for row in board if row.pareto]
    assert front
    for row in board:
        if not row.pareto:
            assert any(o.score >= row.score and o.cost_per_case <= row.cost_per_case for o in front)


def test_run_in_a_real_celery_worker(starter, eval_worker):
    run = run_create(suite=starter["arithmetic"], models=["gpt-4o-mini", "gpt-5.5"], concurrency=2)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.finished:
            break
        time.sleep(0.3)
    assert run.status == RunStatus.DONE, run.error
    # Every answer came from the simulator through the worker's own gateway.
    assert set(Result.objects.filter(run=run).values_list("status", flat=True)) == {200}
    assert Score.objects.filter(run=run).count() == 2
    assert Run.objects.get(pk=run.pk).completed == run.total


def test_result_pages_show_leaderboard_diff_and_model_scores(starter, client):
    suite = starter["classification"]
    run = run_execute(run_id=run_create(suite=suite, models=["gpt-4o-mini", "gpt-5.5"], enqueue=False).id)
    client.force_login(starter_owner(suite))
    page = client.get(reverse("evals:suite-detail", args=[suite.pk])).content.decode()
    assert 'data-testid="leaderboard"' in page and "gpt-5.5" in page and "data-plotly-figure=" in page
    assert "vendor/plotly.min.js" in page
    detail = client.get(reverse("evals:run-detail", args=[run.pk]))
    assert detail.status_code == 200 and b'data-status="done"' in detail.content
    diff = client.get(reverse("evals:run-diff", args=[run.pk]), {"a": "gpt-4o-mini", "b": "gpt-5.5"})
    assert diff.status_code == 200 and diff.content.decode().count("<tr") == suite.cases.count() + 1
    bad = client.get(reverse("evals:run-diff", args=[run.pk]), {"a": "gpt-4o-mini", "b": "nope"})
    assert b"Both models must be in the run" in bad.content
    model = client.get(reverse("evals:model-detail", args=["gpt-5.5"])).content.decode()
    assert suite.name in model


def starter_owner(suite):
    from console.models import Membership

    return Membership.objects.filter(organization_id=suite.organization_id).first().user


def test_a_rubric_case_is_graded_by_the_judge_model_and_its_cost_recorded(demo):
    from evals.services import suite_import

    suite = suite_import(
        organization=demo.org,
        fmt="yaml",
        text=(
            "name: capitals\njudge_model: gpt-5.5\ncases:\n"
            "  - messages: 'Name the capital of France in one sentence.'\n"
            "    check: {kind: rubric, rubric: 'names Paris as the capital',\n"
            "            reference: 'Paris is the capital of France'}\n"
        ),
    )
    run = run_execute(run_id=run_create(suite=suite, models=["gpt-4o-mini"], enqueue=False).id)
    result = run.results.get()
    assert result.judge_cost > 0 and result.cost > 0
    assert result.detail.startswith("judge: SCORE:")
    assert Score.objects.get(run=run).cost == result.cost + result.judge_cost


def test_unknown_models_are_refused_and_runs_are_isolated_between_organizations(starter, client):
    from console import services as console_services

    with pytest.raises(ValidationError) as exc:
        run_create(suite=starter["arithmetic"], models=["gpt-4o-mini", "no-such-model"], enqueue=False)
    assert "no-such-model" in str(exc.value)
    run = run_execute(run_id=run_create(suite=starter["arithmetic"], models=["gpt-4o-mini"], enqueue=False).id)
    stranger = console_services.user_create(username="stranger", password="pw-Owner-123")
    console_services.organization_create(name="Elsewhere", owner=stranger)
    client.force_login(stranger)
    assert client.get(reverse("evals:run-detail", args=[run.pk])).status_code == 404
    assert client.get(reverse("evals:run-diff", args=[run.pk])).status_code == 404
    assert client.post(reverse("evals:run-cancel", args=[run.pk])).status_code == 404
    assert client.get(reverse("evals:suite-detail", args=[starter["arithmetic"].pk])).status_code == 404
    assert b"arithmetic" not in client.get(reverse("evals:model-detail", args=["gpt-4o-mini"])).content


def test_cancelling_a_running_run_stops_new_cases(demo, starter):
    import threading

    from providers.models import Provider
    from providers.services import provider_update

    # Real simulated latency, so the run is still going when it is cancelled.
    provider_update(
        provider=Provider.objects.get(name="sim-azure_openai"), extra_headers={"x-sim-latency-scale": "0.3"}
    )
    run = run_create(suite=starter["arithmetic"], models=["gpt-5.5"], concurrency=1, enqueue=False)
    worker = threading.Thread(target=run_execute, kwargs={"run_id": run.id})
    worker.start()
    deadline = time.monotonic() + 30
    while Run.objects.get(pk=run.pk).completed < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    run_cancel(run=Run.objects.get(pk=run.pk))
    worker.join(timeout=60)
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    assert 1 <= run.completed < run.total
    assert not Score.objects.filter(run=run).exists()
