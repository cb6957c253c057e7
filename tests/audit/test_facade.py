"""What the data plane and the other apps call: the leaf buffer, the batched write, events as leaves."""

from __future__ import annotations

import json
import threading
from decimal import Decimal

import pytest
import rfc8785

from audit.events import audit_record
from audit.facade import LedgerBuffer, integrity_tile, ledger_write
from audit.leaves import request_leaf_json
from audit.models import AuditEvent, Leaf, PendingLeaf
from audit.selectors import log_for
from audit.services import ledger_seal
from tests.audit.conftest import request_leaf

pytestmark = pytest.mark.django_db


def test_the_buffer_hands_every_appended_leaf_to_exactly_one_drain():
    buffer = LedgerBuffer()
    drained: list = []
    stop = threading.Event()

    def writer():
        while not stop.is_set():
            drained.extend(buffer.drain())
        drained.extend(buffer.drain())

    thread = threading.Thread(target=writer)
    thread.start()
    leaves = [request_leaf(1, i) for i in range(5000)]
    for leaf in leaves:
        buffer.append_request(leaf)
    stop.set()
    thread.join()
    assert [x.request_id for x in drained] == [x.request_id for x in leaves]
    assert len(buffer) == 0


def test_a_request_leaf_is_canonical_json_with_hashes_and_no_content(org):
    leaf = request_leaf(org.id, 1, cost=Decimal("0.0100"), guard={"input": {"pii": 2, "score": 0.25}})
    text = request_leaf_json(leaf)
    doc = json.loads(text)
    assert rfc8785.dumps(doc).decode() == text
    assert doc["cost"] == "0.0100" and doc["guard"] == {"input": {"pii": 2, "score": "0.25"}}
    assert doc["type"] == "request" and len(doc["request_sha256"]) == 64
    assert set(doc) >= {"request_id", "time", "key_prefix", "model_requested", "model_used", "deployment", "data_class"}


def test_ledger_write_is_idempotent_by_request_id_and_seals_once(org):
    leaves = [request_leaf(org.id, i) for i in range(5)]
    ledger_write(leaves)
    ledger_write(leaves[:3])  # a retried batch
    ledger_seal()
    ledger_write(leaves[3:])  # retried again after sealing
    ledger_seal()
    log = log_for(org.id)
    entries = list(Leaf.objects.filter(log=log, kind="request").values_list("entry_id", flat=True))
    assert sorted(entries) == sorted(x.request_id for x in leaves)
    assert not PendingLeaf.objects.exists()


def test_each_control_plane_event_becomes_a_leaf_of_its_organizations_log(org):
    event = audit_record(action="key.update", organization_id=org.id, actor="ann", target="gh-1", data={"before": 1})
    operator = audit_record(action="model.import", target="catalog", data={"created": 3})
    assert AuditEvent.objects.filter(pk=event.pk).exists()
    ledger_seal()
    leaf = Leaf.objects.get(entry_id=f"event:{event.id}")
    assert leaf.log == log_for(org.id)
    doc = json.loads(leaf.data)
    assert (doc["action"], doc["actor"], doc["target"]) == ("key.update", "ann", "gh-1")
    assert len(doc["data_sha256"]) == 64 and "before" not in leaf.data
    assert Leaf.objects.get(entry_id=f"event:{operator.id}").log == log_for(None)


def test_logs_are_per_organization(org):
    from tests.audit.conftest import org_make

    other, _ = org_make("Tenant B")
    ledger_write([request_leaf(org.id, 1), request_leaf(other.id, 2), request_leaf(other.id, 3)])
    ledger_seal()
    a, b = log_for(org.id), log_for(other.id)
    assert a.origin != b.origin
    assert {json.loads(d)["organization_id"] for d in Leaf.objects.filter(log=b).values_list("data", flat=True)} == {
        other.id
    }
    assert integrity_tile(organization_id=other.id).size == b.size == 3


def test_sealing_again_with_nothing_pending_signs_nothing(org):
    ledger_write([request_leaf(org.id, 1)])
    ledger_seal()
    log = log_for(org.id)
    checkpoints = log.checkpoints.count()
    assert all(r.sealed == 0 for r in ledger_seal())
    assert log.checkpoints.count() == checkpoints


def test_every_checkpoint_is_appended_to_the_anchor_file(org, settings, tmp_path, django_capture_on_commit_callbacks):
    anchor = tmp_path / "anchor.jsonl"
    settings.GATEHOUSE_LEDGER = {**settings.GATEHOUSE_LEDGER, "ANCHOR_FILE": str(anchor)}
    with django_capture_on_commit_callbacks(execute=True):
        ledger_write([request_leaf(org.id, 1)])
        ledger_seal()
        ledger_write([request_leaf(org.id, 2)])
        ledger_seal()
    records = [json.loads(line) for line in anchor.read_text().splitlines()]
    log = log_for(org.id)
    assert [r["size"] for r in records] == list(log.checkpoints.order_by("size").values_list("size", flat=True))
    assert records[-1]["note"] == log.checkpoints.order_by("-size").first().note


def test_the_scheduled_verification_checks_every_log_once_per_interval(org, settings):
    from audit.models import Verification
    from audit.tasks import ledger_verify

    ledger_write([request_leaf(org.id, 1)])
    audit_record(action="model.import", target="catalog")
    ledger_seal()
    settings.GATEHOUSE_LEDGER = {**settings.GATEHOUSE_LEDGER, "VERIFY_INTERVAL": 3600}
    first = ledger_verify()
    assert len(first) == 2  # the organization's log and the operator log
    assert set(Verification.objects.values_list("status", flat=True)) == {"passed"}
    assert ledger_verify() == []  # not due again within the interval
