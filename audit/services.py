"""Writes of the ledger: leaves in, sealing, checkpoints out, verification runs."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone

from audit.leaves import RequestLeaf, request_leaf_json
from audit.models import (
    Checkpoint,
    Leaf,
    Log,
    PendingLeaf,
    Verification,
    VerificationStatus,
)
from audit.selectors import (
    STORED_LEVELS,
    LedgerCorrupt,
    checkpoint_with_cosignatures,
    compact_range_at,
    log_scope,
)
from audit.signing import Signer, ledger_name, public_keys_document, signing_key_current
from audit.verifier import gatehouse_verify as gv

logger = logging.getLogger(__name__)

CHUNK = 900  # stays under SQLite's bound on query parameters


def _chunks(items: list, size: int = CHUNK) -> Iterable[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


# ---- leaves in --------------------------------------------------------------------


def ledger_write(leaves: Iterable[RequestLeaf]) -> int:
    """Insert request leaves in one bulk write; a request id written twice is written once.

    Runs in the usage writer's thread, never on the event loop."""
    adapt = connection.ops.adapt_datetimefield_value
    rows = [
        (leaf.organization_id, leaf.request_id, "request", request_leaf_json(leaf), adapt(leaf.at)) for leaf in leaves
    ]
    if rows:
        # One transaction: in autocommit every row of executemany would commit on its own.
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO audit_pendingleaf (organization_id, entry_id, kind, data, created_at) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (entry_id) DO NOTHING",
                rows,
            )
    return len(rows)


def log_get_or_create(*, organization_id: int | None) -> Log:
    scope = log_scope(organization_id)
    log = Log.objects.filter(scope=scope).first()
    if log is not None:
        return log
    suffix = "operator" if organization_id is None else f"org/{organization_id}"
    try:
        with transaction.atomic():
            return Log.objects.create(scope=scope, organization_id=organization_id, origin=f"{ledger_name()}/{suffix}")
    except IntegrityError:
        return Log.objects.get(scope=scope)


# ---- sealing ------------------------------------------------------------------------


@dataclass(frozen=True)
class SealResult:
    log_id: int
    sealed: int
    size: int
    checkpoint_id: int | None


def log_seal(*, log_id: int, signer: Signer, batch: int | None = None) -> SealResult:
    """Move pending leaves into the log, store proof nodes, sign one checkpoint.

    The log row is locked (PostgreSQL) and (log, index) is unique, so two sealers never
    fork the log: the second one waits, or fails its insert and seals nothing."""
    batch = batch or settings.GATEHOUSE_LEDGER["SEAL_BATCH"]
    with transaction.atomic():
        log = Log.objects.select_for_update().get(pk=log_id)
        pending = PendingLeaf.objects.filter(
            **(
                {"organization_id__isnull": True}
                if log.organization_id is None
                else {"organization_id": log.organization_id}
            )
        )
        rows = list(pending.order_by("id").values_list("id", "entry_id", "kind", "data", "created_at")[:batch])
        if not rows:
            return SealResult(log.id, 0, log.size, None)
        entry_ids = [r[1] for r in rows]
        sealed_before = set()
        for part in _chunks(entry_ids):
            sealed_before.update(Leaf.objects.filter(log=log, entry_id__in=part).values_list("entry_id", flat=True))
        tree = gv.CompactRange(log.size, [bytes.fromhex(h) for h in log.right_edge])
        leaves, nodes = [], []
        adapt = connection.ops.adapt_datetimefield_value
        sha256, append = hashlib.sha256, tree.append
        for _, entry_id, kind, data, created_at in rows:
            if entry_id in sealed_before:
                continue
            lh = sha256(b"\x00" + data.encode()).digest()
            leaves.append((log.id, tree.size, entry_id, kind, data, lh, adapt(created_at)))
            for level, index, h in append(lh):
                if level in STORED_LEVELS:
                    nodes.append((log.id, level, index, h))
        with connection.cursor() as cursor:
            # Plain parameterized inserts: building model instances costs more than the rest of sealing.
            cursor.executemany(
                'INSERT INTO audit_leaf (log_id, "index", entry_id, kind, data, leaf_hash, created_at) '
                "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                leaves,
            )
            if nodes:
                cursor.executemany(
                    'INSERT INTO audit_node (log_id, level, "index", hash) VALUES (%s, %s, %s, %s)', nodes
                )
        for part in _chunks([r[0] for r in rows]):
            PendingLeaf.objects.filter(id__in=part).delete()
        checkpoint = None
        if leaves:
            root = tree.root()
            right_edge = [h.hex() for h in tree.hashes]
            note = signer.sign_body(gv.checkpoint_body(log.origin, tree.size, root))
            checkpoint = Checkpoint.objects.create(
                log=log,
                size=tree.size,
                root_hash=root.hex(),
                note=note,
                key_id=signer.key.key_id,
                right_edge=right_edge,
            )
            Log.objects.filter(pk=log.pk).update(
                size=tree.size, right_edge=right_edge, root_hash=root.hex(), sealed_at=timezone.now()
            )
            transaction.on_commit(lambda: anchor_push(checkpoint))
    return SealResult(log.id, len(leaves), tree.size, checkpoint.id if checkpoint else None)


def ledger_seal(*, signer: Signer | None = None) -> list[SealResult]:
    """Seal every log that has pending leaves (one checkpoint each)."""
    signer = signer or Signer(signing_key_current())
    scopes = PendingLeaf.objects.values_list("organization_id", flat=True).distinct()
    results = []
    for organization_id in list(scopes):
        log = log_get_or_create(organization_id=organization_id)
        try:
            while True:
                result = log_seal(log_id=log.id, signer=signer)
                results.append(result)
                if result.sealed == 0 or result.checkpoint_id is None:
                    break
                if not PendingLeaf.objects.filter(organization_id=organization_id).exists():
                    break
        except (IntegrityError, OperationalError) as exc:
            # Another sealer holds this log right now; it seals these leaves.
            logger.info("ledger: log %s is being sealed elsewhere (%s)", log.origin, exc)
    return results


def anchor_push(checkpoint: Checkpoint) -> None:
    """The second anchor: the checkpoint leaves the database, to a file and/or a URL."""
    conf = settings.GATEHOUSE_LEDGER
    record = json.dumps({"origin": checkpoint.log.origin, "size": checkpoint.size, "note": checkpoint.note})
    if conf["ANCHOR_FILE"]:
        try:
            with open(conf["ANCHOR_FILE"], "a", encoding="utf-8") as fh:
                fh.write(record + "\n")
        except OSError:
            logger.exception("ledger: the anchor file %s cannot be written", conf["ANCHOR_FILE"])
    if conf["ANCHOR_URL"]:
        import httpx

        try:
            httpx.post(
                conf["ANCHOR_URL"], content=record, headers={"content-type": "application/json"}, timeout=5
            ).raise_for_status()
        except httpx.HTTPError:
            logger.exception("ledger: the anchor URL refused checkpoint %s", checkpoint.size)


# ---- export -------------------------------------------------------------------------


def export_build(*, log: Log, start: int = 0, end: int | None = None) -> dict:
    """An export the offline verifier reads: leaves [start, end) where end is a checkpoint size."""
    checkpoints = list(log.checkpoints.order_by("size").prefetch_related("cosignatures__witness"))
    if not checkpoints:
        return {
            "format": gv.EXPORT_FORMAT,
            "origin": log.origin,
            "start": 0,
            "prefix": [],
            "leaves": [],
            "checkpoints": [],
        }
    sizes = [c.size for c in checkpoints]
    if end is None:
        # Everything stored, even leaves no checkpoint covers: the verifier reports those.
        stored = Leaf.objects.filter(log=log).order_by("-index").values_list("index", flat=True).first()
        leaves_end = max(sizes[-1], (stored or 0) + 1)
        end = sizes[-1]
    else:
        end = next((s for s in sizes if s >= end), sizes[-1])
        leaves_end = end
    start = max(0, min(start, end))
    prefix = compact_range_at(log, start) if start else gv.CompactRange()
    leaves = [
        {"index": index, "leaf": data}
        for index, data in Leaf.objects.filter(log=log, index__gte=start, index__lt=leaves_end)
        .order_by("index")
        .values_list("index", "data")
        .iterator(chunk_size=5000)
    ]
    return {
        "format": gv.EXPORT_FORMAT,
        "origin": log.origin,
        "start": start,
        "prefix": [h.hex() for h in prefix.hashes],
        "leaves": leaves,
        "checkpoints": [checkpoint_with_cosignatures(c) for c in checkpoints if start <= c.size <= end],
        "exported_at": timezone.now().isoformat(),
    }


def export_for_time(*, log: Log, since: datetime, until: datetime) -> dict:
    first = Leaf.objects.filter(log=log, created_at__gte=since, created_at__lt=until).order_by("index").first()
    last = Leaf.objects.filter(log=log, created_at__gte=since, created_at__lt=until).order_by("-index").first()
    if first is None:
        return export_build(log=log, start=log.size, end=log.size)
    return export_build(log=log, start=first.index, end=last.index + 1)


# ---- verification -------------------------------------------------------------------


VERIFY_CHUNK = 20_000


def verification_start(*, log: Log, requested_by: str = "") -> Verification:
    return Verification.objects.create(log=log, requested_by=requested_by)


def verification_run(*, verification_id: int) -> Verification:
    """Verify a log from where the last passing run ended, in chunks that end on checkpoints."""
    run = Verification.objects.select_related("log").get(pk=verification_id)
    log = run.log
    last = (
        Verification.objects.filter(log=log, status=VerificationStatus.PASSED)
        .exclude(pk=run.pk)
        .order_by("-to_size")
        .first()
    )
    start = last.to_size if last else 0
    edge = [bytes.fromhex(h) for h in last.right_edge] if last else []
    doc = public_keys_document()
    log_keys, witness_keys = gv.keys_load(doc) if doc["log_keys"] else ([], [])
    checkpoints = list(
        log.checkpoints.filter(size__gte=start).order_by("size").prefetch_related("cosignatures__witness")
    )
    Verification.objects.filter(pk=run.pk).update(
        from_size=start, to_size=checkpoints[-1].size if checkpoints else start
    )
    problems: list[str] = []
    checked = 0
    i = 0
    try:
        tree = gv.CompactRange(start, edge)
        while i < len(checkpoints):
            group = [checkpoints[i]]
            while i + 1 < len(checkpoints) and checkpoints[i + 1].size - tree.size <= VERIFY_CHUNK:
                i += 1
                group.append(checkpoints[i])
            i += 1
            chunk_end = group[-1].size
            export = {
                "format": gv.EXPORT_FORMAT,
                "origin": log.origin,
                "start": tree.size,
                "prefix": [h.hex() for h in tree.hashes],
                "leaves": [
                    {"index": index, "leaf": data}
                    for index, data in Leaf.objects.filter(log=log, index__gte=tree.size, index__lt=chunk_end)
                    .order_by("index")
                    .values_list("index", "data")
                ],
                "checkpoints": [checkpoint_with_cosignatures(c) for c in group],
            }
            report = gv.export_verify(export, log_keys, witness_keys)
            checked += report.leaves
            if not report.ok:
                problems.extend(report.problems)
                break
            tree = gv.CompactRange(report.size, [bytes.fromhex(h) for h in report.right_edge])
            Verification.objects.filter(pk=run.pk).update(checked=checked)
        # Leaves stored past the latest checkpoint were never sealed by this gateway.
        latest = checkpoints[-1].size if checkpoints else start
        extra = Leaf.objects.filter(log=log, index__gte=latest).count()
        if not problems and extra:
            problems.append(f"{extra} leaves after index {latest - 1} are covered by no signed checkpoint (inserted?)")
    except (gv.VerificationError, LedgerCorrupt, ValueError) as exc:
        problems.append(str(exc))
    status = VerificationStatus.FAILED if problems else VerificationStatus.PASSED
    Verification.objects.filter(pk=run.pk).update(
        status=status,
        checked=checked,
        problems=problems,
        right_edge=[] if problems else [h.hex() for h in tree.hashes],
        to_size=start if problems else tree.size,
        finished_at=timezone.now(),
    )
    run.refresh_from_db()
    if problems:
        from audit.alerts import integrity_alert

        integrity_alert(log=log, verification=run)
    return run


def verifications_due(*, interval: float) -> list[int]:
    """A new run for every log whose last run is older than `interval` seconds."""
    now = timezone.now()
    out = []
    for log in Log.objects.all():
        last = log.verifications.first()
        if last and last.status == VerificationStatus.RUNNING and last.started_at > now - timedelta(hours=1):
            continue
        if last is None or last.started_at <= now - timedelta(seconds=interval):
            out.append(verification_start(log=log, requested_by="schedule").id)
    return out
