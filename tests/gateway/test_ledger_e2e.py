"""End to end: every /v1 request leaves one leaf in its organization's log.

Not collected yet (.pending): enabled once the pipeline's settle step hands a
`RequestLeaf` to the gateway's `LedgerBuffer` and its usage writer calls
`audit.facade.ledger_write`. Rename to test_ledger_e2e.py then.
"""

from __future__ import annotations

import hashlib
import json
import time

import httpx

from audit.models import Leaf, PendingLeaf
from audit.selectors import log_for
from audit.services import export_build, ledger_seal
from audit.signing import public_keys_document
from audit.verifier import gatehouse_verify as gv
from tests.audit.conftest import ledger_transactional  # noqa: F401 - fixture
from tests.conftest import usage_wait

HELLO = [{"role": "user", "content": "hi"}]
SECRET = "prompt-marker-7Qx3ZvK9"  # can't occur by chance in ids, prefixes or hashes


def post(demo, body, path="/chat/completions"):
    return httpx.post(
        demo.base_url + path,
        json=body,
        headers={"authorization": f"Bearer {demo.secret}"},
        timeout=15,
    )


def leaf_wait(request_id: str, timeout: float = 5.0) -> PendingLeaf | Leaf:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = (
            PendingLeaf.objects.filter(entry_id=request_id).first() or Leaf.objects.filter(entry_id=request_id).first()
        )
        if found is not None:
            return found
        time.sleep(0.05)
    raise AssertionError(f"no ledger leaf for {request_id} after {timeout}s")


def test_every_request_leaves_one_leaf_with_hashes_and_no_content(demo, ledger_transactional):  # noqa: F811
    asked = [{"role": "user", "content": SECRET}]
    ok = post(demo, {"model": "gpt-4o-mini", "messages": asked})
    bad = post(demo, {"model": "no-such-model", "messages": asked})
    assert ok.status_code == 200 and bad.status_code == 404
    for response in (ok, bad):
        request_id = response.headers["x-request-id"]
        usage_wait(request_id)
        leaf = json.loads(leaf_wait(request_id).data)
        assert leaf["request_id"] == request_id
        assert leaf["organization_id"] == demo.org.id
        assert leaf["status"] == response.status_code
        assert leaf["key_prefix"] == demo.key.prefix
        assert len(leaf["request_sha256"]) == 64 and len(leaf["response_sha256"]) == 64
        assert SECRET not in json.dumps(leaf)  # hashes only, never content
    leaf = json.loads(leaf_wait(ok.headers["x-request-id"]).data)
    assert leaf["model_used"] == "gpt-4o-mini" and leaf["deployment"]
    assert leaf["response_sha256"] == hashlib.sha256(ok.content).hexdigest()


def test_the_sealed_log_of_real_traffic_verifies_offline(demo, ledger_transactional):  # noqa: F811
    ids = [post(demo, {"model": "gpt-4o-mini", "messages": HELLO}).headers["x-request-id"] for _ in range(5)]
    for request_id in ids:
        leaf_wait(request_id)
    ledger_seal()
    log = log_for(demo.org.id)
    assert set(ids) <= set(Leaf.objects.filter(log=log).values_list("entry_id", flat=True))
    keys, witnesses = gv.keys_load(public_keys_document())
    report = gv.export_verify(export_build(log=log), keys, witnesses)
    assert report.ok, report.problems
