"""Drift: a pinned suite re-run on schedule; a score drop beyond the margin is flagged
on the deployment and alerted through the organization's alert signal."""

from __future__ import annotations

from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from evals.models import Regression, Run, Score
from evals.runner import run_execute
from evals.scheduling import scheduled_runs_queue, suites_due
from evals.services import run_create, suite_update
from gatehouse.signals import organization_alert
from providers.models import Provider
from providers.services import provider_update
from tests.conftest import FAST


def test_a_score_drop_on_a_pinned_suite_raises_an_alert_and_marks_the_deployment(demo, starter, client):
    suite = suite_update(suite=starter["extraction"], pinned=True, models=["gpt-5.5"])
    first = run_execute(run_id=run_create(suite=suite, models=["gpt-5.5"], trigger="regression", enqueue=False).id)
    before = Score.objects.get(run=first).score
    assert before >= suite.regression_margin
    heard = []

    def listen(sender, **kwargs):
        heard.append(kwargs)

    organization_alert.connect(listen, dispatch_uid="test-evals-regression")
    try:
        # The deployment's provider starts breaking its JSON.
        azure = Provider.objects.get(name="sim-azure_openai")
        provider_update(provider=azure, extra_headers={**FAST, "x-sim-invalid-json-rate": "1.0"})
        second = run_execute(run_id=run_create(suite=suite, models=["gpt-5.5"], trigger="regression", enqueue=False).id)
    finally:
        organization_alert.disconnect(dispatch_uid="test-evals-regression")
    after = Score.objects.get(run=second).score
    assert after < before - suite.regression_margin
    regression = Regression.objects.get(run=second)
    assert regression.model == "gpt-5.5" and regression.deployment.startswith("gpt-5.5@")
    assert regression.previous == before and regression.current == after
    assert [h["event"] for h in heard] == ["evals.regression"]
    assert heard[0]["organization_id"] == demo.org.id and heard[0]["payload"]["deployment"] == regression.deployment
    # The health page marks the deployment while the model's latest score is the one that fell.
    client.force_login(demo.owner)
    page = client.get(reverse("routing:health")).content.decode()
    row = page[page.index(f"<strong>{regression.deployment}</strong>") :][:600]
    assert 'data-mark="regression"' in row and f"fell on {suite.name}" in row


def test_no_alert_when_the_score_holds(demo, starter):
    suite = suite_update(suite=starter["arithmetic"], pinned=True, models=["gpt-4o-mini"])
    for _ in range(2):
        run_execute(run_id=run_create(suite=suite, models=["gpt-4o-mini"], trigger="regression", enqueue=False).id)
    assert not Regression.objects.filter(suite=suite).exists()


def test_scheduled_and_pinned_suites_are_queued_when_due(demo, starter):
    pinned = suite_update(suite=starter["arithmetic"], pinned=True, models=["gpt-4o-mini"])
    hourly = suite_update(suite=starter["classification"], schedule="hourly", models=["gpt-4o-mini"])
    assert {s.pk for s in suites_due()} == {pinned.pk, hourly.pk}
    queued = scheduled_runs_queue()
    assert {(r.suite_id, r.trigger) for r in queued} == {(pinned.pk, "regression"), (hourly.pk, "schedule")}
    assert suites_due() == []
    later = timezone.now() + timedelta(hours=2)
    assert [s.pk for s in suites_due(now=later)] == [hourly.pk]
    assert Run.objects.filter(suite=pinned).count() == 1
