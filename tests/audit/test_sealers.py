"""Two sealers at once (real processes on the same database) never fork a log."""

from __future__ import annotations

import os
import subprocess
import sys

from django.conf import settings

from audit.facade import ledger_write
from audit.models import Leaf
from audit.selectors import log_for
from audit.services import export_build
from audit.signing import signing_key_current
from tests.audit.conftest import org_make, request_leaf, run_verifier
from tests.conftest import database_url_for_tests


def test_two_concurrent_sealers_produce_one_consistent_log(ledger_transactional, tmp_path):
    org, _ = org_make("Tenant A")
    signing_key_current()
    ids = []
    for batch in range(4):
        leaves = [request_leaf(org.id, batch * 500 + i) for i in range(500)]
        ids.extend(x.request_id for x in leaves)
        ledger_write(leaves)
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for_tests(),
        "GATEHOUSE_ENV": "test",
        "GATEHOUSE_LEDGER_SEAL_BATCH": "300",
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "manage.py", "ledger_seal", "--loop", "--rounds", "3"],
            cwd=settings.BASE_DIR,
            env={**env, "GATEHOUSE_LEDGER_SEAL_INTERVAL": "0.05"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    log = log_for(org.id)
    entries = list(Leaf.objects.filter(log=log, kind="request").values_list("entry_id", flat=True))
    assert sorted(entries) == sorted(ids)
    assert log.size == Leaf.objects.filter(log=log).count() == 2001
    result = run_verifier(tmp_path, export_build(log=log))
    assert result.returncode == 0, result.stdout
