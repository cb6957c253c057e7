"""The audit ledger: one append-only Merkle log per organization, and the control-plane events.

`PendingLeaf` rows are what the batched writer inserts (cheap, unordered); the sealer moves
them into `Leaf` with their index, stores the few interior nodes proofs need (`Node`), and
signs a `Checkpoint`. Database triggers refuse UPDATE and DELETE on leaves, nodes and
checkpoints (migration 0002).
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class AuditEvent(models.Model):
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    organization_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    actor = models.CharField(max_length=200, blank=True)
    action = models.CharField(max_length=100)
    target = models.CharField(max_length=200, blank=True)
    data = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64, blank=True)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.action} {self.target}"


class Log(models.Model):
    """One log per organization; `scope` "org:<id>", or "operator" for events of no organization."""

    scope = models.CharField(max_length=40, unique=True)
    organization_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    origin = models.CharField(max_length=200, unique=True)
    size = models.BigIntegerField(default=0)
    # The compact range (right-edge perfect subtree hashes, hex) of the sealed tree.
    right_edge = models.JSONField(default=list, blank=True)
    root_hash = models.CharField(max_length=64, blank=True)
    sealed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.origin


class LeafKind(models.TextChoices):
    REQUEST = "request", "Request"
    EVENT = "event", "Control-plane change"


class PendingLeaf(models.Model):
    """A leaf written by the batched writer and not yet sealed into its log."""

    organization_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    entry_id = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=10, choices=LeafKind.choices)
    data = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.entry_id


class Leaf(models.Model):
    log = models.ForeignKey(Log, on_delete=models.PROTECT, related_name="leaves")
    index = models.BigIntegerField()
    entry_id = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=LeafKind.choices)
    data = models.TextField()
    leaf_hash = models.BinaryField()
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["log", "index"], name="audit_leaf_log_index"),
            models.UniqueConstraint(fields=["log", "entry_id"], name="audit_leaf_log_entry"),
        ]
        indexes = [models.Index(fields=["log", "created_at"], name="audit_leaf_log_time")]

    def __str__(self) -> str:
        return f"{self.log_id}#{self.index}"


class Node(models.Model):
    """Hashes of perfect subtrees at a few levels (8, 16): proofs read at most 255 per subtree."""

    log = models.ForeignKey(Log, on_delete=models.PROTECT, related_name="nodes")
    level = models.SmallIntegerField()
    index = models.BigIntegerField()
    hash = models.BinaryField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["log", "level", "index"], name="audit_node_position")]

    def __str__(self) -> str:
        return f"{self.log_id}@{self.level}/{self.index}"


class Checkpoint(models.Model):
    log = models.ForeignKey(Log, on_delete=models.PROTECT, related_name="checkpoints")
    size = models.BigIntegerField()
    root_hash = models.CharField(max_length=64)
    note = models.TextField()
    key_id = models.CharField(max_length=8)
    right_edge = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["log", "size"], name="audit_checkpoint_log_size")]
        ordering = ["-size"]

    def __str__(self) -> str:
        return f"{self.log_id} size {self.size}"


class SigningKey(models.Model):
    """An ML-DSA-65 checkpoint key; the secret half is encrypted with the encryption keys."""

    name = models.CharField(max_length=200)
    key_id = models.CharField(max_length=8, unique=True)
    algorithm = models.CharField(max_length=20, default="ML-DSA-65")
    public_key = models.TextField()
    secret_encrypted = models.TextField()
    valid_from = models.DateTimeField(default=timezone.now)
    valid_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-valid_from"]

    def __str__(self) -> str:
        return f"{self.name} {self.key_id}"


class Witness(models.Model):
    name = models.CharField(max_length=200, unique=True)
    url = models.URLField()
    public_key = models.TextField()
    key_id = models.CharField(max_length=8)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name


class Cosignature(models.Model):
    checkpoint = models.ForeignKey(Checkpoint, on_delete=models.PROTECT, related_name="cosignatures")
    witness = models.ForeignKey(Witness, on_delete=models.PROTECT, related_name="cosignatures")
    line = models.TextField()
    timestamp = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["checkpoint", "witness"], name="audit_cosignature_once")]

    def __str__(self) -> str:
        return f"{self.witness_id} on {self.checkpoint_id}"


class WitnessState(models.Model):
    """The last result of asking a witness about a log, for the console."""

    witness = models.ForeignKey(Witness, on_delete=models.CASCADE, related_name="states")
    log = models.ForeignKey(Log, on_delete=models.CASCADE, related_name="witness_states")
    size = models.BigIntegerField(default=0)
    error = models.TextField(blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["witness", "log"], name="audit_witness_state_once")]

    def __str__(self) -> str:
        return f"{self.witness_id} at {self.size}"


class VerificationStatus(models.TextChoices):
    RUNNING = "running", "Running"
    PASSED = "passed", "Passed"
    FAILED = "failed", "Failed"


class Verification(models.Model):
    """One run of the incremental verifier over a log (scheduled, or 'verify now')."""

    log = models.ForeignKey(Log, on_delete=models.CASCADE, related_name="verifications")
    status = models.CharField(max_length=10, choices=VerificationStatus.choices, default=VerificationStatus.RUNNING)
    from_size = models.BigIntegerField(default=0)
    to_size = models.BigIntegerField(default=0)
    checked = models.BigIntegerField(default=0)
    problems = models.JSONField(default=list, blank=True)
    # The compact range verified so far, so the next run starts where this one ended.
    right_edge = models.JSONField(default=list, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    requested_by = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"{self.log_id} {self.status}"
