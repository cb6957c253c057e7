"""'Verify now' and sealing run in a real Celery worker process."""

from __future__ import annotations

import os
import time

import pytest

from audit.models import PendingLeaf, Verification
from audit.selectors import log_for
from tests.audit.conftest import org_make, request_leaf, seal
from tests.audit.test_views import signed_in


def wait_for(check, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail("the worker did not finish in time")


# The filesystem broker keeps this worker's queue its own; on a Redis broker other test runs
# sharing the server can take the task (as in tests/budgets/test_maintenance.py).
@pytest.mark.skipif(bool(os.environ.get("REDIS_URL")), reason="the Redis broker is shared with other test runs")
def test_verify_now_and_sealing_run_in_a_real_worker(celery_worker_process, ledger_transactional):
    from audit.facade import ledger_write
    from audit.tasks import ledger_seal

    org, owner = org_make("Tenant A")
    seal(org.id, 50, rounds=2)
    client = signed_in(owner, org)
    assert client.post("/integrity/verify/").status_code == 302
    run = wait_for(lambda: Verification.objects.filter(log=log_for(org.id)).exclude(status="running").first())
    assert run.status == "passed" and run.checked == 51
    ledger_write([request_leaf(org.id, i) for i in range(7)])
    ledger_seal.delay()
    wait_for(lambda: not PendingLeaf.objects.filter(organization_id=org.id).exists())
    assert log_for(org.id).size == 58
