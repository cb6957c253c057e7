"""Reads of the ledger: checkpoints, leaves, proofs, the state the console shows."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Max, QuerySet

from audit.merkle import consistency_path, inclusion_path, range_hash
from audit.models import Checkpoint, Cosignature, Leaf, Log, Node, Verification, WitnessState
from audit.verifier.gatehouse_verify import CompactRange, node_hash

STORED_LEVELS = (20, 16, 12, 8, 4)


class LedgerCorrupt(Exception):
    """Stored hashes needed for a proof are missing: the log was tampered with."""


def log_scope(organization_id: int | None) -> str:
    return "operator" if organization_id is None else f"org:{organization_id}"


def log_for(organization_id: int | None) -> Log | None:
    return Log.objects.filter(scope=log_scope(organization_id)).first()


class NodeSource:
    """Perfect subtree hashes from the database: ≤ 256 stored hashes read per subtree."""

    def __init__(self, log_id: int) -> None:
        self.log_id = log_id
        self.cache: dict[tuple[int, int], bytes] = {}

        self.stored: dict[tuple[int, int], bytes] = {}

    @staticmethod
    def _span(level: int, index: int) -> tuple[int, int, int]:
        """The stored level below a subtree, and the first index and count of its hashes there."""
        stored = next((s for s in STORED_LEVELS if s <= level), 0)
        return stored, index << (level - stored), 1 << (level - stored)

    def prefetch(self, wanted: list[tuple[int, int]]) -> None:
        """Read the stored hashes under many subtrees in one query per table."""
        wanted_by_level: dict[int, set[int]] = {}
        for level, index in wanted:
            stored, first, count = self._span(level, index)
            wanted_by_level.setdefault(stored, set()).update(range(first, first + count))
        for stored, indexes in wanted_by_level.items():
            # An explicit IN list: index probes, where OR-ed ranges can make SQLite scan the log.
            ordered = sorted(indexes)
            for part in range(0, len(ordered), 900):
                chunk = ordered[part : part + 900]
                if stored == 0:
                    rows = Leaf.objects.filter(log_id=self.log_id, index__in=chunk).values_list("index", "leaf_hash")
                else:
                    rows = Node.objects.filter(log_id=self.log_id, level=stored, index__in=chunk).values_list(
                        "index", "hash"
                    )
                for index, h in rows:
                    self.stored[(stored, index)] = bytes(h)

    def __call__(self, level: int, index: int) -> bytes:
        key = (level, index)
        if key in self.cache:
            return self.cache[key]
        stored, first, count = self._span(level, index)
        if any((stored, i) not in self.stored for i in (first, first + count - 1)):
            self.prefetch([key])
        try:
            hashes = [self.stored[(stored, i)] for i in range(first, first + count)]
        except KeyError as exc:
            raise LedgerCorrupt(f"hashes of subtree ({level}, {index}) are missing") from exc
        while len(hashes) > 1:
            hashes = [node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes), 2)]
        self.cache[key] = hashes[0]
        return hashes[0]


def _prefetched(log_id: int, plan) -> NodeSource:
    """A source with every subtree a proof will ask for read in advance (the proof's shape
    does not depend on hash values, so a dry run lists them)."""
    wanted: list[tuple[int, int]] = []

    def record(level: int, index: int) -> bytes:
        wanted.append((level, index))
        return b"\0" * 32

    plan(record)
    source = NodeSource(log_id)
    source.prefetch(wanted)
    return source


def compact_range_at(log: Log, size: int) -> CompactRange:
    """The compact range of the tree of `size` leaves, from stored subtree hashes."""
    source = NodeSource(log.id)
    hashes, offset = [], 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size & (1 << level):
            hashes.append(source(level, offset >> level))
            offset += 1 << level
    return CompactRange(size, hashes)


def checkpoint_latest(log: Log) -> Checkpoint | None:
    return log.checkpoints.order_by("-size").first()


def checkpoint_by_size(log: Log, size: int) -> Checkpoint | None:
    return log.checkpoints.filter(size=size).first()


def checkpoint_with_cosignatures(checkpoint: Checkpoint) -> str:
    """The note with every witness cosignature line appended (c2sp.org/tlog-cosignature)."""
    lines = "".join(c.line for c in checkpoint.cosignatures.order_by("witness__name"))
    return checkpoint.note + lines


def inclusion_proof(log: Log, *, index: int, size: int) -> list[bytes]:
    source = _prefetched(log.id, lambda src: inclusion_path(src, index, size))
    return inclusion_path(source, index, size)


def consistency_proof(log: Log, *, size1: int, size2: int) -> list[bytes]:
    source = _prefetched(log.id, lambda src: consistency_path(src, size1, size2))
    return consistency_path(source, size1, size2)


def root_at(log: Log, size: int) -> bytes:
    return range_hash(NodeSource(log.id), 0, size) if size else CompactRange().root()


def leaf_by_entry(log: Log, entry_id: str) -> Leaf | None:
    return Leaf.objects.filter(log=log, entry_id=entry_id).first()


def leaves_range(log: Log, *, start: int, end: int) -> QuerySet[Leaf]:
    return Leaf.objects.filter(log=log, index__gte=start, index__lt=end).order_by("index")


@dataclass(frozen=True)
class IntegrityState:
    log: Log | None
    checkpoint: Checkpoint | None
    pending: int
    verification: Verification | None
    witnesses: list[WitnessState]
    cosignatures: list[Cosignature]


def integrity_state(organization_id: int) -> IntegrityState:
    from audit.models import PendingLeaf

    log = log_for(organization_id)
    pending = PendingLeaf.objects.filter(organization_id=organization_id).count()
    if log is None:
        return IntegrityState(None, None, pending, None, [], [])
    checkpoint = checkpoint_latest(log)
    cosignatures = list(checkpoint.cosignatures.select_related("witness")) if checkpoint else []
    return IntegrityState(
        log=log,
        checkpoint=checkpoint,
        pending=pending,
        verification=log.verifications.first(),
        witnesses=list(log.witness_states.select_related("witness").order_by("witness__name")),
        cosignatures=cosignatures,
    )


def pending_oldest(organization_id: int | None):
    """When the oldest leaf still waiting for a checkpoint was written."""
    from audit.models import PendingLeaf

    return (
        PendingLeaf.objects.filter(organization_id=organization_id)
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )


def latest_cosigned(log: Log) -> dict[int, Cosignature]:
    """The newest cosignature of each witness on this log, by witness id."""
    newest = Cosignature.objects.filter(checkpoint__log=log).values("witness_id").annotate(size=Max("checkpoint__size"))
    out = {}
    for row in newest:
        c = (
            Cosignature.objects.filter(checkpoint__log=log, witness_id=row["witness_id"], checkpoint__size=row["size"])
            .select_related("witness", "checkpoint")
            .first()
        )
        if c:
            out[row["witness_id"]] = c
    return out
