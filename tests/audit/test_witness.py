"""The witness as a real process: cosigns what is consistent, persists before answering,
refuses a smaller tree and a fork; the gateway collects and checks its cosignatures."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from audit.models import Cosignature, Leaf, WitnessState
from audit.selectors import checkpoint_latest, consistency_proof
from audit.services import export_build
from audit.signing import Signer, signing_key_current
from audit.verifier import gatehouse_verify as gv
from audit.witnesses import cosignatures_collect, witness_add
from tests.audit.conftest import keys_file, run_verifier, seal

pytestmark = pytest.mark.django_db

WITNESS = Path(__file__).resolve().parents[2] / "audit" / "verifier" / "gatehouse_witness.py"


class WitnessProcess:
    def __init__(self, state_dir: Path, keys: Path, name: str = "witness.test/w1") -> None:
        self.state_dir, self.keys, self.name = state_dir, keys, name
        self.proc = None
        self.url = ""

    def start(self) -> WitnessProcess:
        self.proc = subprocess.Popen(
            [sys.executable, str(WITNESS), "--state-dir", str(self.state_dir), "--log-keys", str(self.keys)]
            + ["--name", self.name, "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        line = self.proc.stdout.readline()
        assert " on http://" in line, line
        self.url = line.rsplit(" ", 1)[1].strip()
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None

    def post(self, old: int, proof: list[bytes], note: str) -> httpx.Response:
        body = f"old {old}\n" + "".join(base64.b64encode(h).decode() + "\n" for h in proof) + "\n" + note
        return httpx.post(f"{self.url}/add-checkpoint", content=body.encode(), timeout=10)


@pytest.fixture
def witness(org, tmp_path):
    seal(org.id, 20, rounds=2)
    process = WitnessProcess(tmp_path / "witness-state", keys_file(tmp_path)).start()
    key = json.loads((tmp_path / "witness-state" / "witness-key.json").read_text())
    witness_add(name=key["name"], url=process.url, public_key=key["public_key"])
    yield process
    process.stop()


def test_the_gateway_collects_a_cosignature_the_verifier_accepts(org, witness, tmp_path):
    from audit.selectors import log_for

    log = log_for(org.id)
    assert cosignatures_collect() == 1
    latest = checkpoint_latest(log)
    assert Cosignature.objects.filter(checkpoint=latest).count() == 1
    assert WitnessState.objects.get(log=log).size == latest.size
    result = run_verifier(tmp_path, export_build(log=log), "--min-cosignatures", "1")
    assert result.returncode == 0, result.stdout
    assert "1 cosignatures" in result.stdout
    # The log grows; the witness follows with a consistency proof from what it holds.
    seal(org.id, 7)
    assert cosignatures_collect() == 1
    assert WitnessState.objects.get(log=log).size == log.size + 7
    assert cosignatures_collect() == 0  # nothing new to cosign


def test_a_tampered_cosignature_fails_verification(org, witness, tmp_path):
    from audit.selectors import log_for

    log = log_for(org.id)
    cosignatures_collect()
    export = export_build(log=log)
    note = export["checkpoints"][-1]
    head, line = note.rsplit("\u2014 ", 1)
    name, sig = line.split(" ")
    raw = bytearray(base64.b64decode(sig))
    raw[20] ^= 1
    export["checkpoints"][-1] = head + "\u2014 " + name + " " + base64.b64encode(bytes(raw)).decode() + "\n"
    result = run_verifier(tmp_path, export)
    assert result.returncode == 1
    assert "the cosignature of witness witness.test/w1 does not verify" in result.stdout


def test_the_witness_refuses_a_smaller_tree(org, witness):
    from audit.selectors import log_for

    log = log_for(org.id)
    cosignatures_collect()
    held = checkpoint_latest(log).size
    older = log.checkpoints.order_by("size").first()
    response = witness.post(held, [], older.note)
    assert response.status_code == 409 and response.text.strip() == str(held)
    response = witness.post(older.size, [], older.note)
    assert response.status_code == 409 and response.text.strip() == str(held)


def test_the_witness_refuses_a_fork_and_keeps_its_state_across_a_restart(org, witness):
    from audit.selectors import log_for

    log = log_for(org.id)
    cosignatures_collect()
    held = checkpoint_latest(log)
    # The same size with another root, signed with the log's real key: a fork.
    signer = Signer(signing_key_current())
    fork_root = gv.leaf_hash(b"another history")
    fork = signer.sign_body(gv.checkpoint_body(log.origin, held.size, fork_root))
    response = witness.post(held.size, [], fork)
    assert response.status_code == 422
    # A larger tree built on a rewritten history: its consistency proof cannot verify.
    seal(org.id, 5)
    tree = gv.CompactRange()
    for i, data in enumerate(Leaf.objects.filter(log=log).order_by("index").values_list("data", flat=True)):
        tree.append(gv.leaf_hash((data + " " if i == 0 else data).encode()))
    forked = signer.sign_body(gv.checkpoint_body(log.origin, tree.size, tree.root()))
    response = witness.post(held.size, consistency_proof(log, size1=held.size, size2=tree.size), forked)
    assert response.status_code == 422 and "does not verify" in response.text
    # A restart keeps what it cosigned (persisted before it answered).
    witness.stop()
    witness.start()
    state = httpx.get(f"{witness.url}/state", timeout=5).json()
    assert state[log.origin]["size"] == held.size
    assert witness.post(0, [], held.note).status_code == 409


def test_the_witness_refuses_a_checkpoint_no_trusted_key_signed(org, witness):
    from audit.selectors import log_for
    from audit.signing import signing_key_create

    log = log_for(org.id)
    rogue = Signer(signing_key_create(name="rogue.example/ledger"))
    note = rogue.sign_body(gv.checkpoint_body(log.origin, 5, gv.leaf_hash(b"x")))
    response = witness.post(0, [], note)
    assert response.status_code == 403 and "no trusted log key" in response.text


def test_without_a_cosignature_min_cosignatures_fails(org, witness, tmp_path):
    from audit.selectors import log_for

    result = run_verifier(tmp_path, export_build(log=log_for(org.id)), "--min-cosignatures", "1")
    assert result.returncode == 1
    assert "has 0 trusted witness cosignatures, fewer than 1" in result.stdout


def test_a_history_re_signed_with_the_logs_own_key_loses_its_cosignature(org, witness, tmp_path):
    """Even the operator's own signing key cannot rewrite a cosigned checkpoint unnoticed."""
    from audit.selectors import log_for
    from tests.audit.conftest import attacker_sql

    log = log_for(org.id)
    cosignatures_collect()
    latest = checkpoint_latest(log)
    attacker_sql(
        "UPDATE audit_leaf SET data = REPLACE(data, '\"status\":200', '\"status\":403') WHERE log_id = %s",
        params=[log.id],
    )
    tree = gv.CompactRange()
    for data in Leaf.objects.filter(log=log).order_by("index").values_list("data", flat=True):
        tree.append(gv.leaf_hash(data.encode()))
    note = Signer(signing_key_current()).sign_body(gv.checkpoint_body(log.origin, tree.size, tree.root()))
    attacker_sql("DELETE FROM audit_checkpoint WHERE log_id = %s AND id <> " + str(latest.id), params=[log.id])
    attacker_sql(
        "UPDATE audit_checkpoint SET note = %s WHERE id = %s",
        params=[note, latest.id],
        tables=("audit_leaf", "audit_checkpoint"),
    )
    result = run_verifier(tmp_path, export_build(log=log))
    assert result.returncode == 1
    assert (
        f"checkpoint of size {latest.size}: the cosignature of witness witness.test/w1 does not verify" in result.stdout
    )
