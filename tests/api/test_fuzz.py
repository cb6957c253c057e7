"""The management API under fuzzing: schemathesis reads the published schema from the
live server and sends at least 20 generated requests per operation, valid and invalid,
authenticated with an owner's admin token of a seeded organization.

It asserts what the API promises: no 5xx, every response as the schema describes it
(body and status code), every valid request accepted and every invalid one refused.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.api.conftest import usage_event, usage_write, world_build

pytestmark = [pytest.mark.fuzz, pytest.mark.django_db(transaction=True)]

EXAMPLES = 20  # per operation
SEED = 14  # a fixed seed: CI runs the same cases every time; change it locally to explore further
CHECKS = ",".join(
    [
        "not_a_server_error",
        "response_schema_conformance",
        "status_code_conformance",
        "content_type_conformance",
        "positive_data_acceptance",
        "negative_data_rejection",
    ]
)


def schemathesis_cli() -> list[str]:
    found = shutil.which("st", path=str(Path(sys.executable).parent))
    assert found, "schemathesis is not installed (pip install -r requirements-dev.txt)"
    return [found]


def test_management_api_holds_under_schemathesis(gateway_server, models, tmp_path) -> None:
    from datetime import UTC, datetime

    from console import services

    a = world_build("fz", models)
    usage_write(**{"req-fuzz-1": usage_event(a, at=datetime(2025, 3, 10, tzinfo=UTC), cost="0.25")})
    token = services.admin_token_create(organization=a.org, user=a.owner, name="fuzzer").secret
    env = {**os.environ, "HYPOTHESIS_STORAGE_DIRECTORY": str(tmp_path / "hypothesis"), "NO_COLOR": "1"}
    command = [
        *schemathesis_cli(),
        "--config-file",
        str(Path(__file__).with_name("schemathesis.toml")),
        "run",
        f"{gateway_server.url}/api/schema/",
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        CHECKS,
        "--max-examples",
        str(EXAMPLES),
        "--phases",
        "examples,coverage,fuzzing",
        "--workers",
        "1",  # one worker: hypothesis is not thread-safe in every path, and one is as fast here
        "--seed",
        str(SEED),
        "--no-shrink",
        "--suppress-health-check",
        "all",
        "--request-timeout",
        "20",
        "--warnings",
        "off",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path / "report"),
    ]
    # Run in the test's own folder: schemathesis keeps a cache beside it that must not replay old runs.
    run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, check=False, cwd=tmp_path)
    output = run.stdout + run.stderr
    (tmp_path / "schemathesis.txt").write_text(output)
    summary = output[output.find("=== FAILURES") :] if "=== FAILURES" in output else output
    assert run.returncode == 0, f"full output: {tmp_path / 'schemathesis.txt'}\n" + summary[:6000] + summary[-6000:]
    assert "operations" in output.lower()  # it really ran against the schema
