"""Ledger fixtures: organizations, request leaves and sealed logs built through services."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

VERIFIER = Path(__file__).resolve().parents[2] / "audit" / "verifier" / "gatehouse_verify.py"


def request_leaf(org_id: int, n: int = 0, **changes):
    from audit.facade import RequestLeaf, body_sha256

    fields = dict(
        request_id=f"req-{uuid.uuid4().hex}",
        at=datetime(2026, 11, 30, 9, 0, n % 60, tzinfo=UTC),
        organization_id=org_id,
        key_id=7,
        key_prefix="gh-abc123",
        user_id=3,
        model_requested="gpt-4o-mini",
        model_used="gpt-4o-mini",
        deployment="gpt-4o-mini@sim-openai",
        status=200,
        input_tokens=10 + n,
        output_tokens=20,
        cost=Decimal("0.000123"),
        data_class="internal",
        request_sha256=body_sha256(f"request {n}".encode()),
        response_sha256=body_sha256(f"response {n}".encode()),
        guard={"input": "pass"} if n % 2 else None,
    )
    fields.update(changes)
    return RequestLeaf(**fields)


def org_make(name: str):
    from console import services as console_services

    owner = console_services.user_create(username=f"owner-{name}", email=f"{name}@example.com", password="pw-Owner-123")
    org = console_services.organization_create(name=name, owner=owner)
    return org, owner


def seal(org_id: int, leaves: int, *, rounds: int = 1):
    """Write `leaves` request leaves in `rounds` batches, sealing after each: that many checkpoints."""
    from audit.facade import LedgerBuffer, ledger_write
    from audit.selectors import log_for
    from audit.services import ledger_seal

    buffer = LedgerBuffer()
    per = max(1, leaves // rounds)
    written = 0
    ids = []
    while written < leaves:
        for i in range(min(per, leaves - written)):
            leaf = request_leaf(org_id, written + i)
            ids.append(leaf.request_id)
            buffer.append_request(leaf)
        written += len(buffer)
        ledger_write(buffer.drain())
        ledger_seal()
    return log_for(org_id), ids


def keys_file(tmp_path: Path) -> Path:
    from audit.signing import public_keys_document

    path = tmp_path / "keys.json"
    path.write_text(json.dumps(public_keys_document()))
    return path


def run_verifier(tmp_path: Path, export: dict, *args: str) -> subprocess.CompletedProcess:
    """The offline verifier as an auditor runs it: a bare interpreter, no Django, no project."""
    import pqcrypto

    path = tmp_path / "export.json"
    path.write_text(json.dumps(export))
    # An import path holding pqcrypto and its cffi backend, and nothing else.
    site = Path(pqcrypto.__file__).resolve().parents[1]
    work = tmp_path / "auditor"
    libs = work / "lib"
    if not libs.exists():
        libs.mkdir(parents=True)
        for name in ("pqcrypto", "cffi", *[p.name for p in site.glob("_cffi_backend*")]):
            (libs / name).symlink_to(site / name)
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(libs), "PYTHONNOUSERSITE": "1"}
    return subprocess.run(
        [sys.executable, "-S", str(VERIFIER), str(path), "--key", str(keys_file(tmp_path)), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=work,
        timeout=120,
    )


@pytest.fixture
def org(db):
    return org_make("Tenant A")[0]


TRIGGERS = {
    "postgresql": {
        # Deferred foreign-key checks queued in this transaction must run before ALTER TABLE.
        "off": "SET CONSTRAINTS ALL IMMEDIATE; ALTER TABLE {t} DISABLE TRIGGER {t}_append_only; "
        "SET CONSTRAINTS ALL DEFERRED",
    },
    "sqlite": {"off": "DROP TRIGGER IF EXISTS {t}_no_update; DROP TRIGGER IF EXISTS {t}_no_delete"},
}


def attacker_sql(*statements: str, params: list | None = None, tables=("audit_leaf", "audit_checkpoint")) -> None:
    """What someone with database admin rights can do: switch the triggers off and change rows.

    Inside the test's transaction, so the triggers are back for the next test."""
    from django.db import connection

    with connection.cursor() as cursor:
        for table in tables:
            for sql in TRIGGERS[connection.vendor]["off"].format(t=table).split("; "):
                cursor.execute(sql)
        for sql in statements:
            cursor.execute(sql, params or [])


@pytest.fixture
def ledger_transactional(transactional_db):
    """For tests that commit: after the test, the sealed rows are removed the way an operator
    resetting a test database would (triggers off, rows deleted, triggers back), so the
    table flush that follows meets no append-only trigger."""
    yield
    from importlib import import_module

    from django.db import connection

    migration = import_module("audit.migrations.0002_ledger")
    with connection.schema_editor() as editor:
        migration.triggers_drop(None, editor)
        for table in ("audit_cosignature", "audit_node", "audit_leaf", "audit_checkpoint"):
            editor.execute(f"DELETE FROM {table}")
        migration.triggers_create(None, editor)
