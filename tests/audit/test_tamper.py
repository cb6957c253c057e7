"""Each way to tamper with a log, done in raw SQL as a database admin would, and the
offline verifier (a separate, Django-free process) naming what it found."""

from __future__ import annotations

import json

import pytest

from audit.models import Checkpoint, Leaf
from audit.selectors import checkpoint_latest
from audit.services import export_build, verification_run, verification_start
from audit.signing import Signer, signing_key_current
from audit.verifier import gatehouse_verify as gv
from tests.audit.conftest import attacker_sql, run_verifier, seal

pytestmark = pytest.mark.django_db


@pytest.fixture
def sealed(org):
    log, _ = seal(org.id, 40, rounds=4)
    return log


def failures(result) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    return result.stdout


def test_an_untouched_export_passes(sealed, tmp_path):
    result = run_verifier(tmp_path, export_build(log=sealed))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"OK {sealed.origin}: {sealed.size} leaves" in result.stdout


def test_a_rewritten_leaf_is_found(sealed, tmp_path):
    attacker_sql(
        "UPDATE audit_leaf SET data = REPLACE(data, '\"status\":200', '\"status\":500') "
        'WHERE log_id = %s AND "index" = 7',
        params=[sealed.id],
    )
    assert '"status":500' in Leaf.objects.get(log=sealed, index=7).data
    out = failures(run_verifier(tmp_path, export_build(log=sealed)))
    assert "do not produce the signed root" in out and "rewritten" in out


def test_a_deleted_leaf_is_found(sealed, tmp_path):
    attacker_sql('DELETE FROM audit_leaf WHERE log_id = %s AND "index" = 12', params=[sealed.id])
    out = failures(run_verifier(tmp_path, export_build(log=sealed)))
    assert "leaf 12 is missing (deleted)" in out


def test_an_inserted_leaf_is_found(sealed, tmp_path):
    forged = gv.canonical_json({"type": "request", "request_id": "forged", "status": 200})
    attacker_sql(
        'UPDATE audit_leaf SET "index" = -("index" + 1) WHERE log_id = %s AND "index" >= 5',
        'UPDATE audit_leaf SET "index" = -"index" WHERE log_id = %s AND "index" < 0',
        params=[sealed.id],
    )
    first = Leaf.objects.filter(log=sealed).order_by("index").first()
    Leaf.objects.create(
        log=sealed,
        index=5,
        entry_id="forged",
        kind="request",
        data=forged,
        leaf_hash=gv.leaf_hash(forged.encode()),
        created_at=first.created_at,
    )
    out = failures(run_verifier(tmp_path, export_build(log=sealed)))
    assert "do not produce the signed root" in out
    assert "covered by no signed checkpoint" in out


def test_reordered_leaves_are_found(sealed, tmp_path):
    attacker_sql(
        'UPDATE audit_leaf SET "index" = -1 WHERE log_id = %s AND "index" = 3',
        'UPDATE audit_leaf SET "index" = 3 WHERE log_id = %s AND "index" = 4',
        'UPDATE audit_leaf SET "index" = 4 WHERE log_id = %s AND "index" = -1',
        params=[sealed.id],
    )
    out = failures(run_verifier(tmp_path, export_build(log=sealed)))
    assert "do not produce the signed root" in out and "reordered" in out


def test_a_truncated_tail_is_found(sealed, tmp_path):
    attacker_sql('DELETE FROM audit_leaf WHERE log_id = %s AND "index" >= 35', params=[sealed.id])
    out = failures(run_verifier(tmp_path, export_build(log=sealed)))
    assert f"truncated: the checkpoint of size {sealed.size} covers leaves the export does not hold" in out


def test_a_truncated_tail_with_its_checkpoints_gone_is_found_by_the_checkpoint_the_auditor_kept(sealed, tmp_path):
    kept = checkpoint_latest(sealed)
    (tmp_path / "kept.txt").write_text(kept.note)
    older = sealed.checkpoints.order_by("-size")[1]
    attacker_sql(
        'DELETE FROM audit_leaf WHERE log_id = %s AND "index" >= ' + str(older.size),
        "DELETE FROM audit_checkpoint WHERE log_id = %s AND size > " + str(older.size),
        params=[sealed.id],
    )
    export = export_build(log=sealed)
    assert run_verifier(tmp_path, export).returncode == 0  # consistent on its own...
    out = failures(run_verifier(tmp_path, export, "--previous", str(tmp_path / "kept.txt")))
    assert f"the log shrank: your previous checkpoint has size {kept.size}" in out


def test_a_forged_checkpoint_is_found(sealed, tmp_path):
    latest = checkpoint_latest(sealed)
    fake_root = gv.leaf_hash(b"not the root")
    body = gv.checkpoint_body(sealed.origin, latest.size, fake_root)
    signature = latest.note.split("\n\n", 1)[1]
    attacker_sql(
        "UPDATE audit_checkpoint SET note = %s, root_hash = %s WHERE id = %s",
        params=[body + "\n" + signature, fake_root.hex(), latest.id],
    )
    out = failures(run_verifier(tmp_path, export_build(log=sealed)))
    assert f"checkpoint of size {latest.size}: the signature of {sealed.origin.rsplit('/', 2)[0]}" in out
    assert "does not verify (forged or altered checkpoint)" in out


def test_a_checkpoint_re_signed_with_a_key_the_auditor_does_not_trust_is_found(sealed, tmp_path):
    from audit.signing import signing_key_create

    keys = tmp_path / "keys-before.json"
    export_keys = run_verifier  # noqa: F841 - the key file is written by the first run below
    run_verifier(tmp_path, export_build(log=sealed))
    keys.write_text((tmp_path / "keys.json").read_text())
    rogue = signing_key_create(name=signing_key_current().name)
    latest = checkpoint_latest(sealed)
    attacker_sql(
        "UPDATE audit_leaf SET data = REPLACE(data, '\"status\":200', '\"status\":404') WHERE log_id = %s",
        params=[sealed.id],
    )
    tree = gv.CompactRange()
    for data in Leaf.objects.filter(log=sealed).order_by("index").values_list("data", flat=True):
        tree.append(gv.leaf_hash(data.encode()))
    note = Signer(rogue).sign_body(gv.checkpoint_body(sealed.origin, tree.size, tree.root()))
    attacker_sql(
        "DELETE FROM audit_checkpoint WHERE log_id = %s AND id <> " + str(latest.id),
        params=[sealed.id],
    )
    attacker_sql("UPDATE audit_checkpoint SET note = %s WHERE id = %s", params=[note, latest.id])
    export = export_build(log=sealed)
    export_path = tmp_path / "export.json"
    export_path.write_text(json.dumps(export))
    import subprocess
    import sys

    from tests.audit.conftest import VERIFIER

    result = subprocess.run(
        [sys.executable, str(VERIFIER), str(export_path), "--key", str(keys)], capture_output=True, text=True
    )
    assert result.returncode == 1
    assert f"checkpoint of size {latest.size} is signed by no trusted log key" in result.stdout


def test_a_split_view_is_found(sealed, tmp_path):
    """The operator's own key signs a second history of the same size: the auditor's kept
    checkpoint, or two checkpoints of one size in an export, show the split."""
    latest = checkpoint_latest(sealed)
    (tmp_path / "kept.txt").write_text(latest.note)
    attacker_sql(
        'UPDATE audit_leaf SET data = REPLACE(data, \'"cost":"0.000123"\', \'"cost":"0"\') WHERE log_id = %s',
        params=[sealed.id],
    )
    tree = gv.CompactRange()
    for data in Leaf.objects.filter(log=sealed).order_by("index").values_list("data", flat=True):
        tree.append(gv.leaf_hash(data.encode()))
    other = Signer(signing_key_current()).sign_body(gv.checkpoint_body(sealed.origin, tree.size, tree.root()))
    attacker_sql(
        "DELETE FROM audit_checkpoint WHERE log_id = %s AND id <> " + str(latest.id),
        params=[sealed.id],
    )
    attacker_sql("UPDATE audit_checkpoint SET note = %s WHERE id = %s", params=[other, latest.id])
    export = export_build(log=sealed)
    assert run_verifier(tmp_path, export).returncode == 0  # a self-consistent rewritten history...
    out = failures(run_verifier(tmp_path, export, "--previous", str(tmp_path / "kept.txt")))
    assert f"split view: your previous checkpoint of size {latest.size} and the log's differ" in out
    export["checkpoints"].append(latest.note)
    out = failures(run_verifier(tmp_path, export))
    assert f"split view: two signed checkpoints of size {latest.size} with different roots" in out


def test_an_older_checkpoint_the_auditor_kept_is_consistent(sealed, tmp_path):
    older = sealed.checkpoints.order_by("size")[1]
    (tmp_path / "kept.txt").write_text(older.note)
    result = run_verifier(tmp_path, export_build(log=sealed), "--previous", str(tmp_path / "kept.txt"))
    assert result.returncode == 0, result.stdout


def test_a_time_range_export_verifies_from_its_compact_range(org, tmp_path):
    log, _ = seal(org.id, 600, rounds=3)
    middle = log.checkpoints.order_by("size")[1]
    export = export_build(log=log, start=middle.size - 3, end=middle.size + 10)
    assert export["start"] == middle.size - 3 and export["prefix"]
    result = run_verifier(tmp_path, export)
    assert result.returncode == 0, result.stdout
    export["prefix"][0] = "00" * 32
    assert "do not produce the signed root" in failures(run_verifier(tmp_path, export))


def test_the_scheduled_verification_passes_then_finds_a_rewrite_and_alerts(sealed, mailoutbox):
    first = verification_run(verification_id=verification_start(log=sealed).id)
    assert first.status == "passed" and first.checked == sealed.size
    attacker_sql(
        "UPDATE audit_leaf SET data = REPLACE(data, '\"status\":200', '\"status\":201') WHERE log_id = %s",
        params=[sealed.id],
    )
    seal(sealed.organization_id, 5)
    # Incremental: the rewrite is in leaves already verified, so the next run checks only new ones...
    second = verification_run(verification_id=verification_start(log=sealed).id)
    assert second.status == "passed" and second.from_size == sealed.size and second.checked == 5
    # ...and a full run from zero finds it.
    from audit.models import Verification

    Verification.objects.filter(log=sealed).delete()
    third = verification_run(verification_id=verification_start(log=sealed).id)
    assert third.status == "failed"
    assert any("do not produce the signed root" in p for p in third.problems)
    assert mailoutbox and "integrity check" in mailoutbox[0].subject
    from audit.models import AuditEvent

    assert AuditEvent.objects.filter(
        action="ledger.verification_failed", organization_id=sealed.organization_id
    ).exists()


def test_the_database_refuses_update_and_delete_of_leaves_and_checkpoints(sealed):
    from django.db import DatabaseError, transaction

    for model in (Leaf, Checkpoint):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            model.objects.filter(pk=model.objects.filter(**{"log": sealed}).first().pk).update(created_at=None)
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            model.objects.filter(log=sealed).first().delete()
    assert Leaf.objects.filter(log=sealed).count() == sealed.size


def test_a_failed_verification_reaches_the_organization_webhook_signed(org, mailoutbox):
    """The ledger imports no other app: its alert goes out through the organization's alert
    channels (the budgets app's signed webhook and e-mail) by the shared signal."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from budgets.alerts import webhook_verify
    from budgets.services import alert_settings_set
    from console.models import Organization

    received: list[tuple[dict, bytes]] = []

    class Hook(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            return None

        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            body = self.rfile.read(int(self.headers["content-length"]))
            received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        organization = Organization.objects.get(pk=org.id)
        _, secret = alert_settings_set(
            organization=organization, webhook_url=f"http://127.0.0.1:{server.server_address[1]}/hook"
        )
        log, _ = seal(org.id, 12, rounds=2)
        attacker_sql(
            "UPDATE audit_leaf SET data = REPLACE(data, '\"status\":200', '\"status\":500') WHERE log_id = %s",
            params=[log.id],
        )
        run = verification_run(verification_id=verification_start(log=log).id)
        assert run.status == "failed"
    finally:
        server.shutdown()
        server.server_close()
    assert len(received) == 1
    headers, body = received[0]
    assert headers["x-gatehouse-event"] == "ledger.verification_failed"
    assert webhook_verify(secret, headers["x-gatehouse-signature"], body)
    assert json.loads(body)["log"] == log.origin
    assert mailoutbox and "integrity check" in mailoutbox[0].subject
