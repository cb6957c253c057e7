"""Runs go through the real pipeline against the simulator, and their results hold up."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from evals import selectors
from evals.models import Result, Run, RunStatus, Score
from evals.runner import run_execute
from evals.services import run_cancel, run_create

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
    assert Score.objects.filter(run=run).count() == 2
    assert Run.objects.get(pk=run.pk).completed == run.total
