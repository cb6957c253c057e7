"""Evaluation fixtures: the demo organization with the starter suites installed."""

from __future__ import annotations

import os

import pytest

MODELS = ["gpt-4o-mini", "claude-sonnet-4-6", "gemini-3.1-pro", "gpt-5.5"]


@pytest.fixture
def starter(demo):
    from evals.services import starter_suites_install

    suites = starter_suites_install(organization=demo.org, models=MODELS)
    return {suite.task_class: suite for suite in suites}


@pytest.fixture
def eval_worker(gateway_server, request):
    """The real Celery worker, told where the test server's simulator is."""
    from django.conf import settings

    os.environ["GATEHOUSE_SIMULATOR_URL"] = settings.GATEHOUSE["SIMULATOR_URL"]
    return request.getfixturevalue("celery_worker_process")
